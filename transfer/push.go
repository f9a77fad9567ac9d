package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/framesource"
	"github.com/oci2/oci2/store/registry"
)

// PushOptions configure Push.
type PushOptions struct {
	Options
	// Remotes, when set, gives mount candidates and manifests the target
	// already holds, and records the push.
	Remotes *Remotes
	// MountFrom lists more repositories of the target's registry to try
	// mounting missing blobs from.
	MountFrom []string
	// ByDigest stores the image without tagging it (push-by-digest).
	ByDigest bool
}

// Push sends the image root (an image index or manifest of st, the local
// store) to target (host/repo[:tag]; the tag defaults to latest). Blobs the
// repository has are not sent; missing packs are mounted from another
// repository of the same registry when one has them, else rebuilt from the
// store's frames and uploaded. Manifests go last, the tagged root at the very
// end, so the tag never names an incomplete image.
func Push(ctx context.Context, st framesource.Store, root ocispec.Descriptor, target string, opts PushOptions) (*Result, error) {
	dst, err := parseRemote(target)
	if err != nil {
		return nil, err
	}
	if dst.digest != "" && dst.digest != root.Digest {
		return nil, fmt.Errorf("push %s: the image is %s", target, root.Digest)
	}
	g, err := walkGraph(ctx, root, localGet(st))
	if err != nil {
		return nil, fmt.Errorf("push: reading image %s: %w", root.Digest, err)
	}
	p := &pusher{st: st, frames: framesource.New(st, nil), g: g, opts: opts, dst: dst, present: map[digest.Digest]bool{}}
	images, err := openImages(ctx, st, g)
	if err == nil {
		err = validateTrees(ctx, images, p.frames)
	}
	if err != nil {
		return nil, fmt.Errorf("push %s: refusing to send an invalid image: %w", target, err)
	}
	p.pool = newFramePool(p.localFrame, 0, 0)
	p.planMounts(ctx)
	ro := opts.Registry
	ro.Push = true
	ro.MountFrom = p.mountRepos
	if ro.Stats == nil {
		ro.Stats = &registry.Stats{}
	}
	ro.Warn = joinWarn(ro.Warn, opts.Warn)
	before := ro.Stats.Snapshot()
	p.m = newMeter(opts.Progress, ro.Stats)
	if p.repo, err = registry.New(ctx, dst.repo, ro); err != nil {
		return nil, fmt.Errorf("push %s: %w", target, err)
	}
	res := &Result{Ref: dst.String(), Digest: root.Digest, MediaType: root.MediaType, Size: g.root().desc.Size,
		Manifests: len(g.manifestDigests())}
	p.res = res
	if err := p.run(ctx); err != nil {
		return nil, fmt.Errorf("push %s: %w", target, err)
	}
	res.Snapshot = ro.Stats.Snapshot().Sub(before)
	if opts.Remotes != nil {
		opts.Remotes.Record(dst.repo, g.manifestDigests())
	}
	return res, nil
}

func localGet(st store.Reader) getFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
		return st.ReadBlob(ctx, desc.Digest, registry.MaxManifestSize)
	}
}

func joinWarn(a, b func(string)) func(string) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(s string) { a(s); b(s) }
}

type pusher struct {
	st     store.Reader
	frames *framesource.Source // frames stored or virtual (SPEC.md §8)
	pool   *framePool          // prepares the frames of packs being uploaded
	g      *graph
	opts   PushOptions
	dst    remoteRef
	repo   *registry.Repo
	m      *meter
	res    *Result

	mountRepos []string                   // candidate repositories (full names)
	mountFrom  map[digest.Digest][]string // blob -> repositories that should have it
	known      []digest.Digest            // manifests recorded in the target

	mu      sync.Mutex
	present map[digest.Digest]bool
}

// planMounts reads the record for mount candidates and known manifests.
func (p *pusher) planMounts(ctx context.Context) {
	p.mountFrom = map[digest.Digest][]string{}
	need := map[digest.Digest]bool{}
	for _, b := range p.g.blobs {
		need[b.Digest] = true
	}
	reg := registryOf(p.dst.repo)
	add := func(repo string, blobs map[digest.Digest]bool) {
		used := false
		for d := range blobs {
			if need[d] {
				p.mountFrom[d] = append(p.mountFrom[d], repo)
				used = true
			}
		}
		if used {
			p.mountRepos = append(p.mountRepos, repo)
		}
	}
	for _, repo := range p.opts.Remotes.Repositories() {
		if registryOf(repo) != reg {
			continue
		}
		if repo == p.dst.repo {
			_, p.known = blobsOf(ctx, p.st, p.opts.Remotes.Manifests(repo))
			continue
		}
		blobs, _ := blobsOf(ctx, p.st, p.opts.Remotes.Manifests(repo))
		add(repo, blobs)
	}
	for _, repo := range p.opts.MountFrom {
		if rr, err := parseRemote(repo); err == nil && registryOf(rr.repo) == reg && rr.repo != p.dst.repo {
			add(rr.repo, need)
		}
	}
	for d := range p.mountFrom {
		sort.Strings(p.mountFrom[d])
	}
}

// registryOf returns the host part of a normalized repository name.
func registryOf(repo string) string {
	for i := 0; i < len(repo); i++ {
		if repo[i] == '/' {
			return repo[:i]
		}
	}
	return repo
}

func (p *pusher) run(ctx context.Context) error {
	if err := p.checkKnown(ctx); err != nil {
		return err
	}
	missing, err := p.check(ctx)
	if err != nil {
		return err
	}
	if err := p.send(ctx, missing); err != nil {
		return err
	}
	return p.putManifests(ctx)
}

// checkKnown asks whether manifests recorded as pushed to the target are
// still there: the blobs of one that is are there too (a registry accepts a
// manifest only with its blobs and never collects them while it lives).
func (p *pusher) checkKnown(ctx context.Context) error {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.jobs())
	for _, md := range p.known {
		g.Go(func() error {
			if _, err := p.repo.HeadManifest(gctx, md.String()); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return nil
				}
				return err
			}
			blobs, _ := blobsOf(gctx, p.st, []digest.Digest{md})
			mu.Lock()
			defer mu.Unlock()
			for d := range blobs {
				p.present[d] = true
			}
			return nil
		})
	}
	return g.Wait()
}

// check asks the target about every blob not known present; it returns
// the missing ones, largest first.
func (p *pusher) check(ctx context.Context) ([]ocispec.Descriptor, error) {
	var todo []ocispec.Descriptor
	for _, b := range p.g.blobs {
		if !p.present[b.Digest] {
			todo = append(todo, b)
		}
	}
	missing, err := missingBlobs(ctx, p.repo, todo, p.opts.jobs(), p.m)
	if err != nil {
		return nil, err
	}
	p.res.BlobsPresent = len(p.g.blobs) - len(missing)
	sort.Slice(missing, func(i, j int) bool {
		if missing[i].Size != missing[j].Size {
			return missing[i].Size > missing[j].Size
		}
		return missing[i].Digest < missing[j].Digest
	})
	return missing, nil
}

// missingBlobs asks repo, jobs at a time, which of blobs it lacks (in no
// particular order), counting each answer on m.
func missingBlobs(ctx context.Context, repo *registry.Repo, blobs []ocispec.Descriptor, jobs int, m *meter) ([]ocispec.Descriptor, error) {
	m.phase("check", int64(len(blobs)), 0)
	var mu sync.Mutex
	var missing []ocispec.Descriptor
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, b := range blobs {
		g.Go(func() error {
			ok, err := repo.HasBlob(gctx, b.Digest)
			if err != nil {
				return err
			}
			mu.Lock()
			if !ok {
				missing = append(missing, b)
			}
			mu.Unlock()
			m.add(1, 0)
			return nil
		})
	}
	return missing, g.Wait()
}

// send mounts or uploads the missing blobs.
func (p *pusher) send(ctx context.Context, missing []ocispec.Descriptor) error {
	var total int64
	for _, b := range missing {
		total += b.Size
	}
	p.m.phase("upload", int64(len(missing)), total)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.jobs())
	for _, b := range missing {
		g.Go(func() error { return p.sendBlob(gctx, b) })
	}
	return g.Wait()
}

func (p *pusher) sendBlob(ctx context.Context, b ocispec.Descriptor) error {
	session := ""
	cands := p.mountFrom[b.Digest]
	for i, from := range cands {
		mounted, s, err := p.repo.Mount(ctx, b.Digest, from)
		if err != nil {
			p.warn(fmt.Sprintf("mounting %s from %s: %v; uploading it", b.Digest, from, err))
			break
		}
		if mounted {
			p.mu.Lock()
			p.res.BlobsMounted++
			p.mu.Unlock()
			p.m.add(1, b.Size)
			return nil
		}
		if i < len(cands)-1 {
			p.repo.CancelUpload(ctx, s)
			continue
		}
		session = s
	}
	open, err := p.opener(ctx, b)
	if err != nil {
		return err
	}
	if err := p.repo.UploadSession(ctx, session, b.Digest, b.Size, open); err != nil {
		return err
	}
	p.mu.Lock()
	p.res.BlobsUploaded++
	p.res.BytesUploaded += b.Size
	p.mu.Unlock()
	p.m.add(1, 0)
	return nil
}

// opener returns the content of blob b: a stored blob, or a pack rebuilt
// from the frames its index lists.
func (p *pusher) opener(ctx context.Context, b ocispec.Descriptor) (registry.Opener, error) {
	if !isPack(b) {
		return func() (io.ReadCloser, error) {
			rc, err := p.st.Open(ctx, b.Digest)
			if err != nil {
				return nil, err
			}
			return p.m.reader(rc), nil
		}, nil
	}
	idxDigest, err := digest.Parse(b.Annotations[format.AnnotationPackIndex])
	if err != nil {
		return nil, fmt.Errorf("pack %s: no valid %s annotation: %w", b.Digest, format.AnnotationPackIndex, err)
	}
	ib, err := p.st.ReadBlob(ctx, idxDigest, format.MaxPackIndexSize)
	if err != nil {
		return nil, fmt.Errorf("pack %s: reading its index: %w", b.Digest, err)
	}
	idx, err := format.DecodePackIndex(ib)
	if err != nil {
		return nil, fmt.Errorf("pack %s: index %s: %w", b.Digest, idxDigest, err)
	}
	if got := int64(idx.PackSize()); got != b.Size {
		return nil, fmt.Errorf("pack %s: descriptor size %d, its index describes %d bytes: %w",
			b.Digest, b.Size, got, store.ErrSizeMismatch)
	}
	return func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			// Frames are read or regenerated ahead of the one being
			// written, in parallel (virtual frames are re-encoded).
			pf := p.pool.start(ctx, idx.Frames)
			err := pack.WritePack(ctx, pw, idx, pf.Frame)
			pf.Close()
			pw.CloseWithError(err)
		}()
		return p.m.reader(pr), nil
	}, nil
}

// localFrame reads a frame blob (verified by the store), or regenerates a
// virtual frame from its chunks (checked against its digest).
func (p *pusher) localFrame(ctx context.Context, f *format.Frame) ([]byte, error) {
	b, err := p.frames.StoredFrame(ctx, f)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("frame %s is not in the local store (incomplete image?): %w", f.Digest, err)
	}
	return b, err
}

// putManifests stores every manifest and index, children first, the root
// under its tag (or digest) last.
func (p *pusher) putManifests(ctx context.Context) error {
	p.m.phase("manifests", int64(len(p.g.nodes)), 0)
	for i, n := range p.g.nodes {
		ref := n.desc.Digest.String()
		if i == len(p.g.nodes)-1 && !p.opts.ByDigest && p.dst.tag != "" {
			ref = p.dst.tag
		}
		if _, err := p.repo.PutManifest(ctx, ref, n.desc.MediaType, n.data); err != nil {
			return err
		}
		p.m.add(1, 0)
	}
	return nil
}

func (p *pusher) warn(s string) {
	if p.opts.Warn != nil {
		p.opts.Warn(s)
	}
}

func (o Options) jobs() int {
	if o.Registry.Jobs > 0 {
		return o.Registry.Jobs
	}
	return 4
}
