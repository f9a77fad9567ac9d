package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/walk"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/framesource"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/registry"
)

// PullStore is what Pull needs of the local store: what its index needs
// (units, and durability of the blobs a pull relies on).
type PullStore interface {
	index.Store
}

// PullOptions configure Pull.
type PullOptions struct {
	Options
	// Name is the local ref to set (default: the source reference,
	// normalized).
	Name string
	// Index is the store's frame index (default: built by scanning the
	// store). Frames Pull stores are added to it.
	Index *index.Index
	// Remotes, when set, records the pull (mount hints for later pushes).
	Remotes *Remotes
	// GapBytes: needed frames of a pack closer than this are fetched with
	// one range request, the bytes between them too (default 256 KiB).
	GapBytes int64
	// MaxRangesPerPack bounds the range requests for one pack (default 4):
	// nearest ranges are merged until it holds.
	MaxRangesPerPack int
	// WholePackFraction: when the ranges of a pack cover at least this
	// fraction of it, the whole pack is fetched in one request (default 0.5).
	WholePackFraction float64
}

func (o *PullOptions) defaults() {
	if o.GapBytes <= 0 {
		o.GapBytes = 256 << 10
	}
	if o.MaxRangesPerPack <= 0 {
		o.MaxRangesPerPack = 4
	}
	if o.WholePackFraction <= 0 {
		o.WholePackFraction = 0.5
	}
}

// Pull fetches src (host/repo[:tag][@digest]) into st and names it. Only
// what st lacks crosses the network: manifests, configs and pack indexes it
// has are not fetched; frames it holds are kept, frames it can rebuild from
// chunks it holds are rebuilt, and the rest are fetched with range requests
// on the packs (coalesced, bounded per pack) or whole-pack requests. Tree
// packs come first: the trees are walked and validated (SPEC.md §4.2, §4.3,
// §7) before any data frame is fetched. Every frame is verified before it
// is stored; the ref is set last, so a pull that
// fails or is killed leaves no ref, and the next one resumes (frames already
// stored are not fetched again).
func Pull(ctx context.Context, st PullStore, src string, opts PullOptions) (*Result, error) {
	pl, ref, err := newPuller(ctx, st, src, opts)
	if err != nil {
		return nil, err
	}
	opts = pl.opts
	name := opts.Name
	if name == "" {
		name = ref.String()
	}
	before := pl.stats.Snapshot()
	root, err := pl.manifests(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", src, err)
	}
	// Trees first: an image whose trees break the format is refused before
	// its data crosses the network, and is never named.
	pl.treesOnly = true
	if err := pl.content(ctx); err != nil {
		return nil, fmt.Errorf("pull %s: %w", src, err)
	}
	if err := validateTrees(ctx, pl.images, framesource.New(st, pl.opts.Index)); err != nil {
		return nil, fmt.Errorf("pull %s: %w (its metadata is stored unnamed; gc removes it)", src, err)
	}
	pl.treesOnly, pl.dataOnly = false, true
	if err := pl.content(ctx); err != nil {
		return nil, fmt.Errorf("pull %s: %w", src, err)
	}
	if err := st.SetRef(ctx, name, root); err != nil {
		return nil, fmt.Errorf("pull %s: naming it %s: %w", src, name, err)
	}
	pl.res.Ref = name
	pl.res.Snapshot = pl.stats.Snapshot().Sub(before)
	if opts.Remotes != nil {
		opts.Remotes.Record(ref.repo, pl.g.manifestDigests())
	}
	return pl.res, nil
}

// newPuller connects to src's repository for reading.
func newPuller(ctx context.Context, st PullStore, src string, opts PullOptions) (*puller, remoteRef, error) {
	opts.defaults()
	ref, err := parseRemote(src)
	if err != nil {
		return nil, ref, err
	}
	ro := opts.Registry
	ro.Push = false
	if ro.Stats == nil {
		ro.Stats = &registry.Stats{}
	}
	ro.Warn = joinWarn(ro.Warn, opts.Warn)
	repo, err := registry.New(ctx, ref.repo, ro)
	if err != nil {
		return nil, ref, fmt.Errorf("pull %s: %w", src, err)
	}
	return &puller{st: st, repo: repo, opts: opts, stats: ro.Stats, m: newMeter(opts.Progress, ro.Stats),
		res: &Result{Ref: ref.String()}}, ref, nil
}

type puller struct {
	st    PullStore
	repo  *registry.Repo
	opts  PullOptions
	stats *registry.Stats
	m     *meter
	res   *Result

	treesOnly bool // content fetches the frames of tree packs only (a lazy image)
	dataOnly  bool // content fetches the frames of data packs only

	g       *graph
	images  []*reader.Image
	plain   []ocispec.Descriptor // blobs of manifests that are not oci2 images
	foreign int                  // such manifests that are not attestations either

	mu sync.Mutex
}

// manifests reads the image graph (from the store when it has the blobs),
// stores every manifest and index, and opens the oci2 images (reading
// configs and pack indexes through the store).
func (pl *puller) manifests(ctx context.Context, ref remoteRef) (ocispec.Descriptor, error) {
	pl.m.phase("manifests", 0, 0)
	root, rootBytes, err := pl.repo.GetManifest(ctx, ref.ref())
	if err != nil {
		return root, err
	}
	pl.res.BlobsFetched++
	get := func(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
		if desc.Digest == root.Digest {
			return rootBytes, nil
		}
		if b, err := pl.st.ReadBlob(ctx, desc.Digest, registry.MaxManifestSize); err == nil {
			return b, nil
		}
		_, b, err := pl.repo.GetManifest(ctx, desc.Digest.String())
		if err == nil {
			pl.res.BlobsFetched++
		}
		return b, err
	}
	if pl.g, err = walkGraph(ctx, root, get); err != nil {
		return root, err
	}
	for _, n := range pl.g.nodes {
		if err := pl.st.PutBlob(ctx, n.desc.Digest, n.data); err != nil {
			return root, fmt.Errorf("storing manifest %s: %w", n.desc.Digest, err)
		}
	}
	if err := pl.prefetch(ctx); err != nil {
		return root, err
	}
	through := &throughReader{local: pl.st, remote: pl.repo, fetched: func() {
		pl.mu.Lock()
		pl.res.BlobsFetched++
		pl.mu.Unlock()
	}}
	for _, n := range pl.g.nodes {
		if !isManifest(n.desc.MediaType) {
			continue
		}
		img, err := reader.Open(ctx, through, n.desc)
		if errors.Is(err, reader.ErrNotOCI2) {
			pl.plainBlobs(n)
			continue
		}
		if err != nil {
			return root, err
		}
		pl.images = append(pl.images, img)
	}
	if len(pl.images) == 0 {
		return root, fmt.Errorf("%s is %w (no manifest has the %s annotation): pull it with docker or skopeo, then oci2 import",
			ref, reader.ErrNotOCI2, format.AnnotationFormat)
	}
	if pl.foreign > 0 {
		pl.warn(fmt.Sprintf("%s: %d manifests that are neither oci2 images nor attestations are copied blob by blob", ref, pl.foreign))
	}
	pl.res.Digest, pl.res.MediaType, pl.res.Size = root.Digest, root.MediaType, root.Size
	pl.res.Manifests = len(pl.g.manifestDigests())
	return root, nil
}

// prefetch fetches the configs and pack indexes the store lacks, in
// parallel, checking each against its descriptor's size and digest.
func (pl *puller) prefetch(ctx context.Context) error {
	var todo []ocispec.Descriptor
	seen := map[digest.Digest]bool{}
	for _, n := range pl.g.nodes {
		var m ocispec.Manifest
		if n.desc.MediaType != ocispec.MediaTypeImageManifest || json.Unmarshal(n.data, &m) != nil {
			continue
		}
		if m.Annotations[format.AnnotationFormat] == "" {
			continue // not an oci2 image: copied blob by blob
		}
		for _, l := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			if l.MediaType != format.MediaTypePackIndex && l.Digest != m.Config.Digest || seen[l.Digest] {
				continue
			}
			seen[l.Digest] = true
			if info, err := pl.st.Stat(ctx, l.Digest); err == nil && info.Size == l.Size {
				continue
			}
			todo = append(todo, l)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pl.opts.jobs())
	for _, l := range todo {
		g.Go(func() error {
			max := int64(reader.MaxConfigSize)
			if l.MediaType == format.MediaTypePackIndex {
				max = format.MaxPackIndexSize
			}
			b, err := pl.repo.Fetch(gctx, l.Digest, l.Size, max)
			if err != nil {
				return err
			}
			if err := pl.st.PutBlob(gctx, l.Digest, b); err != nil {
				return fmt.Errorf("storing blob %s: %w", l.Digest, err)
			}
			pl.mu.Lock()
			pl.res.BlobsFetched++
			pl.mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// plainBlobs notes the config and layers of a manifest that is not an oci2
// image (an attestation, say): they are copied as they are. Attestations
// are expected; anything else is reported.
func (pl *puller) plainBlobs(n node) {
	if !walk.IsAttestation(n.desc) {
		pl.foreign++
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(n.data, &m); err != nil {
		return
	}
	pl.plain = append(pl.plain, m.Config)
	pl.plain = append(pl.plain, m.Layers...)
}

// content stores the plain blobs and the frames of every pack.
func (pl *puller) content(ctx context.Context) error {
	for _, b := range pl.plain {
		if err := pl.copyBlob(ctx, b); err != nil {
			return err
		}
	}
	if len(pl.images) == 0 {
		return nil
	}
	idx, err := pl.frameIndex(ctx)
	if err != nil {
		return err
	}
	return idx.WithSession(ctx, func(ctx context.Context, s *index.Session) error {
		f := &fetcher{pl: pl, idx: s, treesOnly: pl.treesOnly, dataOnly: pl.dataOnly}
		if err := f.run(ctx); err != nil {
			return err
		}
		if pl.dataOnly {
			// The trees' pass stored or indexed every tree frame, this one
			// every data frame: the index's files hold all the frames the
			// images name, and say so (SPEC.md §8.2).
			s.MarkDone(pl.doneDigests()...)
		}
		return nil
	})
}

// doneDigests are the blobs of the pulled graph that lead to frames: its
// manifests and indexes (all stored) and the images' pack indexes.
func (pl *puller) doneDigests() []digest.Digest {
	var ds []digest.Digest
	for _, n := range pl.g.nodes {
		ds = append(ds, n.desc.Digest)
	}
	for _, img := range pl.images {
		for _, list := range [][]reader.Pack{img.TreePacks, img.DataPacks} {
			for _, p := range list {
				ds = append(ds, p.IndexDescriptor.Digest)
			}
		}
	}
	return ds
}

// frameIndex returns the index of the store's frames the pull uses: the
// caller's (PullOptions.Index), else the store's own, opened once (a lazy
// image's reads and a second content call, data after trees, reuse it).
func (pl *puller) frameIndex(ctx context.Context) (*index.Index, error) {
	if pl.opts.Index == nil {
		idx, err := index.New(ctx, pl.st)
		if err != nil {
			return nil, fmt.Errorf("indexing store: %w", err)
		}
		pl.opts.Index = idx
	}
	return pl.opts.Index, nil
}

// copyBlob stores blob b unless the store has it.
func (pl *puller) copyBlob(ctx context.Context, b ocispec.Descriptor) error {
	if info, err := pl.st.Stat(ctx, b.Digest); err == nil && info.Size == b.Size {
		return pl.st.Keep(ctx, b.Digest) // the ref will name it
	}
	rc, err := pl.repo.Open(ctx, b.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := pl.st.WriteBlob(ctx, b.Digest, b.Size, rc); err != nil {
		return fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	pl.mu.Lock()
	pl.res.BlobsFetched++
	pl.mu.Unlock()
	return nil
}

// throughReader reads blobs from the local store, else from the registry,
// storing what it fetched (verified) in the local store.
type throughReader struct {
	local   PullStore
	remote  *registry.Repo
	fetched func()
}

func (t *throughReader) Stat(ctx context.Context, d digest.Digest) (store.Info, error) {
	if info, err := t.local.Stat(ctx, d); err == nil {
		return info, nil
	}
	return t.remote.Stat(ctx, d)
}

func (t *throughReader) ReadBlob(ctx context.Context, d digest.Digest, maxSize int64) ([]byte, error) {
	b, err := t.local.ReadBlob(ctx, d, maxSize)
	if !errors.Is(err, store.ErrNotFound) {
		return b, err
	}
	if b, err = t.remote.ReadBlob(ctx, d, maxSize); err != nil {
		return nil, err
	}
	t.fetched()
	if err := t.local.PutBlob(ctx, d, b); err != nil {
		return nil, fmt.Errorf("storing blob %s: %w", d, err)
	}
	return b, nil
}

func (t *throughReader) Open(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	b, err := t.ReadBlob(ctx, d, 0)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (pl *puller) warn(s string) {
	if pl.opts.Warn != nil {
		pl.opts.Warn(s)
	}
}
