package transfer

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store/registry"
)

// CopyOptions configure Copy.
type CopyOptions struct {
	Options
	// Dst configures the target registry when it differs from the source's
	// (credentials come from the keychain for both by default).
	Dst *registry.Options
	// ByDigest stores the image without tagging it.
	ByDigest bool
}

// Copy copies the image src names to dst (host/repo[:tag]; without a tag,
// src's tag, else latest), byte for byte so digests are kept. Blobs dst has
// are skipped; within one registry the others are mounted from src's
// repository, else streamed from src to dst (verified on the way).
func Copy(ctx context.Context, src, dst string, opts CopyOptions) (*Result, error) {
	sref, err := parseRemote(src)
	if err != nil {
		return nil, err
	}
	dref, err := parseRemoteName(dst)
	if err != nil {
		return nil, err
	}
	ro := opts.Registry
	if ro.Stats == nil {
		ro.Stats = &registry.Stats{}
	}
	ro.Warn = joinWarn(ro.Warn, opts.Warn)
	do := ro
	if opts.Dst != nil {
		do = *opts.Dst
		do.Stats = ro.Stats
		do.Warn = joinWarn(do.Warn, opts.Warn)
	}
	do.Push = true
	same := registryOf(sref.repo) == registryOf(dref.repo)
	if same && sref.repo != dref.repo {
		do.MountFrom = []string{sref.repo}
	}
	before := ro.Stats.Snapshot()
	from, err := registry.New(ctx, sref.repo, ro)
	if err != nil {
		return nil, fmt.Errorf("copy from %s: %w", src, err)
	}
	to, err := registry.New(ctx, dref.repo, do)
	if err != nil {
		return nil, fmt.Errorf("copy to %s: %w", dst, err)
	}
	root, rootBytes, err := from.GetManifest(ctx, sref.ref())
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", src, err)
	}
	if dref.digest != "" && dref.digest != root.Digest {
		return nil, fmt.Errorf("copy %s to %s: the image is %s", src, dst, root.Digest)
	}
	g, err := walkGraph(ctx, root, func(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
		if desc.Digest == root.Digest {
			return rootBytes, nil
		}
		_, b, err := from.GetManifest(ctx, desc.Digest.String())
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", src, err)
	}
	images, err := openImages(ctx, from, g)
	if err == nil {
		err = validateTrees(ctx, images, reader.PackRanges(from))
	}
	if err != nil {
		return nil, fmt.Errorf("copy %s: refusing to copy an invalid image: %w", src, err)
	}
	c := &copier{from: from, to: to, g: g, mount: same && sref.repo != dref.repo, opts: opts,
		m: newMeter(opts.Progress, ro.Stats)}
	tag := dref.tag
	if tag == "" && dref.digest == "" {
		tag = sref.tag
		if tag == "" {
			tag = "latest"
		}
	}
	if opts.ByDigest {
		tag = ""
	}
	c.res = &Result{Ref: dref.repo + "@" + root.Digest.String(), Digest: root.Digest, MediaType: root.MediaType,
		Size: root.Size, Manifests: len(g.manifestDigests())}
	if tag != "" {
		c.res.Ref = dref.repo + ":" + tag
	}
	if err := c.run(ctx, tag); err != nil {
		return nil, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	c.res.Snapshot = ro.Stats.Snapshot().Sub(before)
	return c.res, nil
}

type copier struct {
	from, to *registry.Repo
	g        *graph
	mount    bool
	opts     CopyOptions
	m        *meter
	res      *Result
	mu       sync.Mutex
}

func (c *copier) run(ctx context.Context, tag string) error {
	missing, err := missingBlobs(ctx, c.to, c.g.blobs, c.opts.jobs(), c.m)
	if err != nil {
		return err
	}
	c.res.BlobsPresent = len(c.g.blobs) - len(missing)
	sort.Slice(missing, func(i, j int) bool { return missing[i].Size > missing[j].Size })
	var total int64
	for _, b := range missing {
		total += b.Size
	}
	c.m.phase("copy", int64(len(missing)), total)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.jobs())
	for _, b := range missing {
		g.Go(func() error { return c.copyBlob(gctx, b) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	c.m.phase("manifests", int64(len(c.g.nodes)), 0)
	for i, n := range c.g.nodes {
		ref := n.desc.Digest.String()
		if i == len(c.g.nodes)-1 && tag != "" {
			ref = tag
		}
		if _, err := c.to.PutManifest(ctx, ref, n.desc.MediaType, n.data); err != nil {
			return err
		}
		c.m.add(1, 0)
	}
	return nil
}

func (c *copier) copyBlob(ctx context.Context, b ocispec.Descriptor) error {
	session := ""
	if c.mount {
		mounted, s, err := c.to.Mount(ctx, b.Digest, c.from.Path())
		switch {
		case err != nil:
			if c.opts.Warn != nil {
				c.opts.Warn(fmt.Sprintf("mounting %s: %v; copying it", b.Digest, err))
			}
		case mounted:
			c.mu.Lock()
			c.res.BlobsMounted++
			c.mu.Unlock()
			c.m.add(1, b.Size)
			return nil
		default:
			session = s
		}
	}
	open := func() (io.ReadCloser, error) {
		rc, err := c.from.Open(ctx, b.Digest)
		if err != nil {
			return nil, err
		}
		return c.m.reader(rc), nil
	}
	if err := c.to.UploadSession(ctx, session, b.Digest, b.Size, open); err != nil {
		return err
	}
	c.mu.Lock()
	c.res.BlobsUploaded++
	c.res.BytesUploaded += b.Size
	c.mu.Unlock()
	c.m.add(1, 0)
	return nil
}
