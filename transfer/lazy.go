package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/framesource"
	"github.com/oci2/oci2/store/index"
)

// LazyImage is an image of a registry whose metadata the local store holds
// (manifests, configs, pack indexes and the frames of the tree packs) and
// whose data frames are fetched when they are needed: coalesced into range
// requests as a pull coalesces them, verified, and stored in the local
// store, so a later pull or lazy open does not fetch them again. It is a
// reader.FrameSource for the image's chunk reader. Nothing names the image
// in the store: gc may remove what it stored, which is then fetched again.
type LazyImage struct {
	// Root is the image index or manifest the reference names.
	Root ocispec.Descriptor

	pl *puller
}

var _ reader.FrameSource = (*LazyImage)(nil)

// OpenLazy fetches src's metadata into st (what st lacks) and returns the
// lazily fetched image.
func OpenLazy(ctx context.Context, st PullStore, src string, opts PullOptions) (*LazyImage, error) {
	pl, ref, err := newPuller(ctx, st, src, opts)
	if err != nil {
		return nil, err
	}
	pl.treesOnly = true
	root, err := pl.manifests(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", src, err)
	}
	if _, err := pl.frameIndex(ctx); err != nil {
		return nil, err
	}
	if err := pl.content(ctx); err != nil {
		return nil, fmt.Errorf("opening %s: %w", src, err)
	}
	// The tree frames are local now: an image whose trees break the
	// format is refused before anything mounts or builds on it.
	if err := validateTrees(ctx, pl.images, framesource.New(st, pl.opts.Index)); err != nil {
		return nil, fmt.Errorf("opening %s: %w", src, err)
	}
	return &LazyImage{Root: root, pl: pl}, nil
}

// OpenStoredLazy is OpenLazy of an image whose metadata st holds already
// (an OpenLazy, say of `oci2 containerd import`, fetched it): root is its
// manifest in st, and only the frames st lacks are fetched from src's
// repository, as they are needed. It requests nothing but the registry's
// login: the manifests are not fetched again, and the trees are not
// validated again (they were before anything named them; the caller's
// walk of the image meets its limits anyway, and a tree frame gc removed
// since is fetched and verified as any frame).
func OpenStoredLazy(ctx context.Context, st PullStore, src string, root ocispec.Descriptor, opts PullOptions) (*LazyImage, error) {
	pl, _, err := newPuller(ctx, st, src, opts)
	if err != nil {
		return nil, err
	}
	if _, err := pl.frameIndex(ctx); err != nil {
		return nil, err
	}
	return &LazyImage{Root: root, pl: pl}, nil
}

// Stats returns what was fetched so far (metadata included).
func (l *LazyImage) Stats() Result {
	l.pl.mu.Lock()
	defer l.pl.mu.Unlock()
	r := *l.pl.res
	r.Snapshot = l.pl.stats.Snapshot()
	return r
}

// Frame reads frame i of p from the local store, fetching it first when
// the store lacks it.
func (l *LazyImage) Frame(ctx context.Context, p *reader.Pack, i int) ([]byte, error) {
	f := &p.Index.Frames[i]
	b, err := l.pl.st.ReadBlob(ctx, f.Digest.Digest(), int64(f.StoredSize))
	if !errors.Is(err, store.ErrNotFound) {
		return b, err
	}
	if err := l.fetchFrames(ctx, p, []int{i}); err != nil {
		return nil, err
	}
	return l.pl.st.ReadBlob(ctx, f.Digest.Digest(), int64(f.StoredSize))
}

// FetchChunks makes sure the store holds the frames of the given chunks
// (a file's, read for the first time): the missing ones are fetched
// together, a few range requests per pack.
func (l *LazyImage) FetchChunks(ctx context.Context, cr *reader.ChunkReader, ids []format.ChunkID) error {
	type frameRef struct {
		p *reader.Pack
		i int
	}
	seen := map[frameRef]bool{}
	var packs []*reader.Pack
	missing := map[*reader.Pack][]int{}
	for _, id := range ids {
		p, i, ok := cr.Locate(id)
		if !ok || seen[frameRef{p, i}] {
			continue
		}
		seen[frameRef{p, i}] = true
		f := &p.Index.Frames[i]
		if info, err := l.pl.st.Stat(ctx, f.Digest.Digest()); err == nil && info.Size == int64(f.StoredSize) {
			continue
		}
		if missing[p] == nil {
			packs = append(packs, p)
		}
		missing[p] = append(missing[p], i)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(l.pl.opts.jobs())
	for _, p := range packs {
		g.Go(func() error { return l.fetchFrames(gctx, p, missing[p]) })
	}
	return g.Wait()
}

// fetchFrames fetches and stores frames of p, planned as a pull plans them.
func (l *LazyImage) fetchFrames(ctx context.Context, p *reader.Pack, frames []int) error {
	slices.Sort(frames)
	frames = slices.Compact(frames)
	need := map[int]bool{}
	for _, i := range frames {
		need[i] = true
	}
	o := l.pl.opts
	return o.Index.WithSession(ctx, func(ctx context.Context, ss *index.Session) error {
		f := &fetcher{pl: l.pl, idx: ss}
		for _, s := range spans(p, frames, o.GapBytes, o.MaxRangesPerPack, o.WholePackFraction, l.pl.repo.IgnoresRange()) {
			if err := f.fetchSpan(ctx, p, s, need); err != nil {
				return err
			}
		}
		return nil
	})
}
