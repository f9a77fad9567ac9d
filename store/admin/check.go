package admin

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/framesource"
	"github.com/oci2/oci2/store/index"
)

// CheckStore is what Check needs of a store.
type CheckStore interface {
	store.Reader
	store.Refs
	store.RootLister
	store.Units
	store.IndexHome
}

// CheckOptions configure Check.
type CheckOptions struct {
	// ReadData reads and decodes every frame (verifying every chunk ID and
	// every pack digest). Trees are walked either way.
	ReadData bool
	// Workers verify packs in parallel (default GOMAXPROCS).
	Workers  int
	Progress func(CheckProgress)
}

// CheckProgress reports Check's progress. Bytes count stored frame bytes read
// in phase "data".
type CheckProgress struct {
	Phase      string // "refs", "frames", "data", "trees"
	Done       int64
	Total      int64
	Bytes      int64
	BytesTotal int64
}

// Problem is one thing wrong in the store. Ref names the image it breaks;
// Blob the blob at fault (a manifest, pack index, frame, ...); Path the file
// or directory of the image when the problem is in its tree.
type Problem struct {
	Ref     string        `json:"ref"`
	Blob    digest.Digest `json:"blob,omitempty"`
	Path    string        `json:"path,omitempty"`
	Message string        `json:"message"`
}

func (p Problem) String() string {
	s := p.Ref
	if p.Blob != "" {
		s += ": blob " + p.Blob.String()
	}
	if p.Path != "" {
		s += ": path /" + p.Path
	}
	return s + ": " + p.Message
}

// Report is what Check found.
type Report struct {
	Refs      int `json:"refs"`
	Manifests int `json:"manifests"`
	Packs     int `json:"packs"`
	Frames    int `json:"frames"`
	// VirtualFrames are frames without a blob whose chunks the store holds
	// in units and other frames (SPEC.md §8).
	VirtualFrames int       `json:"virtual_frames"`
	DataBytes     int64     `json:"data_bytes_read"`
	Problems      []Problem `json:"problems"`
}

// OK reports whether Check found no problem.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// checker holds the state of one Check run.
type checker struct {
	st   CheckStore
	src  *framesource.Source // frames stored or virtual
	opts CheckOptions
	rep  *Report

	images   map[digest.Digest]*reader.Image // opened manifests
	manRefs  map[digest.Digest][]string      // manifest -> refs
	manOrder []digest.Digest
	packs    map[digest.Digest]*reader.Pack // unique packs
	packRefs map[digest.Digest][]string
	packList []digest.Digest
}

// Check verifies every image a ref reaches: the index and manifests parse and
// validate (reader.Open), and every pack index and frame blob is present with
// the right size, or the frame is virtual: every one of its chunks is held by
// a unit or another frame (SPEC.md §8), and every tree is walked as an
// unpack would (SPEC.md §4.2, §4.3, §7: reading tree frames only), checking
// that every data chunk a file references is in the image's packs. With
// ReadData it also decodes every frame verifying each chunk (a virtual frame
// regenerated from its chunks must give its digest) and checks every pack
// digest against its frames.
// Problems are collected in the Report; the error is for failures of Check
// itself (the store cannot be listed, ctx is done).
func Check(ctx context.Context, st CheckStore, opts CheckOptions) (*Report, error) {
	if opts.Progress == nil {
		opts.Progress = func(CheckProgress) {}
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	// Chunks are located by a scan of the blobs, never through the index
	// files: those are what checkIndex verifies against the blobs.
	c := &checker{
		st: st, src: framesource.New(st, nil, index.InMemory()), opts: opts, rep: &Report{Problems: []Problem{}},
		images: map[digest.Digest]*reader.Image{}, manRefs: map[digest.Digest][]string{},
		packs: map[digest.Digest]*reader.Pack{}, packRefs: map[digest.Digest][]string{},
	}
	refs, err := st.ListRefs(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing refs: %w", err)
	}
	c.rep.Refs = len(refs)
	if err := c.checkShadowed(ctx); err != nil {
		return nil, err
	}
	if err := c.openAll(ctx, refs); err != nil {
		return nil, err
	}
	if err := c.statFrames(ctx); err != nil {
		return nil, err
	}
	if st.IndexDir() != "" { // its index files, compared with the blobs
		if err := c.checkIndex(ctx); err != nil {
			return nil, err
		}
	}
	if opts.ReadData {
		if err := c.readData(ctx); err != nil {
			return nil, err
		}
	}
	// Trees are walked without ReadData too: an invalid tree makes the
	// image unusable (unpack, images, du fail on it), and reading the tree
	// frames costs little next to the data.
	if err := c.walkTrees(ctx); err != nil {
		return nil, err
	}
	return c.rep, nil
}

// checkShadowed reports every name the store's list carries more than once
// (an index.json another tool wrote): the store uses the first entry, as
// skopeo does, but umoci refuses the name as ambiguous.
func (c *checker) checkShadowed(ctx context.Context) error {
	extra, err := extraRoots(ctx, c.st)
	if err != nil {
		return fmt.Errorf("listing refs: %w", err)
	}
	for _, x := range extra {
		if x.Name == "" {
			continue
		}
		c.problem([]string{x.Name}, x.Descriptor.Digest, "", fmt.Errorf(
			"%s: the name is ambiguous (oci2 and skopeo use the first entry, umoci refuses it); "+
				"oci2 tag NAME NAME keeps the first alone, oci2 rm NAME removes every entry", x))
	}
	return nil
}

// checkIndex reports every mismatch between the index files and the store,
// as problems of the ref "index".
func (c *checker) checkIndex(ctx context.Context) error {
	c.opts.Progress(CheckProgress{Phase: "index"})
	scanned := map[digest.Digest][]format.Frame{}
	for _, p := range c.packs {
		scanned[p.IndexDescriptor.Digest] = p.Index.Frames
	}
	ms, err := index.Verify(ctx, c.st.IndexDir(), c.st, scanned)
	if err != nil {
		return fmt.Errorf("checking the index: %w", err)
	}
	for _, m := range ms {
		c.rep.Problems = append(c.rep.Problems, Problem{Ref: "index", Blob: m.Blob, Message: "index file " + m.File + ": " + m.Message})
	}
	return nil
}

func (c *checker) problem(refs []string, blob digest.Digest, path string, err error) {
	for _, r := range refs {
		c.rep.Problems = append(c.rep.Problems, Problem{Ref: r, Blob: blob, Path: path, Message: err.Error()})
	}
}

// openAll walks every ref's graph and opens each distinct manifest.
func (c *checker) openAll(ctx context.Context, refs []store.Ref) error {
	w := newWalker(c.st)
	for i, ref := range refs {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.opts.Progress(CheckProgress{Phase: "refs", Done: int64(i), Total: int64(len(refs))})
		g := newGraph()
		w.walk(ctx, g, ref.Descriptor)
		for _, p := range g.Problems {
			c.problem([]string{ref.Name}, p.Blob, "", p.Err)
		}
		for _, a := range g.Attestations {
			c.checkAttestation(ctx, []string{ref.Name}, a)
		}
		for _, m := range g.Manifests {
			if _, ok := c.manRefs[m.Digest]; !ok {
				c.manOrder = append(c.manOrder, m.Digest)
				if img := c.open(ctx, ref.Name, m); img != nil {
					c.images[m.Digest] = img
				}
			}
			c.manRefs[m.Digest] = append(c.manRefs[m.Digest], ref.Name)
		}
	}
	c.rep.Manifests = len(c.manOrder)
	// Attribute packs to every ref of the manifests using them.
	for _, md := range c.manOrder {
		img := c.images[md]
		if img == nil {
			continue
		}
		for _, ps := range [][]reader.Pack{img.TreePacks, img.DataPacks} {
			for i := range ps {
				p := &ps[i]
				d := p.Descriptor.Digest
				if _, ok := c.packs[d]; !ok {
					c.packs[d] = p
					c.packList = append(c.packList, d)
				}
				c.packRefs[d] = appendNew(c.packRefs[d], c.manRefs[md]...)
			}
		}
	}
	c.rep.Packs = len(c.packList)
	return nil
}

func appendNew(list []string, add ...string) []string {
	for _, a := range add {
		dup := false
		for _, x := range list {
			dup = dup || x == a
		}
		if !dup {
			list = append(list, a)
		}
	}
	return list
}

// open validates one manifest with reader.Open; problems are reported
// against ref and the manifest and nil is returned.
func (c *checker) open(ctx context.Context, ref string, m ocispec.Descriptor) *reader.Image {
	img, err := reader.Open(ctx, c.st, m)
	if err != nil {
		c.problem([]string{ref}, m.Digest, "", fmt.Errorf("opening image manifest: %w", err))
		return nil
	}
	for _, ps := range [][]reader.Pack{img.TreePacks, img.DataPacks} {
		for i := range ps {
			p := &ps[i]
			if got := int64(p.Index.PackSize()); got != p.Descriptor.Size {
				c.problem([]string{ref}, p.Descriptor.Digest, "",
					fmt.Errorf("pack index %s describes %d bytes, pack descriptor says %d", p.IndexDescriptor.Digest, got, p.Descriptor.Size))
			}
		}
	}
	return img
}

// statFrames checks that every frame of every pack is stored with its size.
func (c *checker) statFrames(ctx context.Context) error {
	var total int64
	for _, pd := range c.packList {
		total += int64(len(c.packs[pd].Index.Frames))
	}
	seen := map[format.ChunkID]bool{}
	var done int64
	for _, pd := range c.packList {
		p := c.packs[pd]
		for i := range p.Index.Frames {
			f := &p.Index.Frames[i]
			done++
			if seen[f.Digest] {
				continue
			}
			seen[f.Digest] = true
			if err := ctx.Err(); err != nil {
				return err
			}
			if done%256 == 0 {
				c.opts.Progress(CheckProgress{Phase: "frames", Done: done, Total: total})
			}
			info, err := c.st.Stat(ctx, f.Digest.Digest())
			if errors.Is(err, store.ErrNotFound) {
				ok, lerr := c.src.Available(ctx, f)
				switch {
				case lerr != nil:
					err = fmt.Errorf("%w; locating its chunks: %w", err, lerr)
				case ok:
					c.rep.VirtualFrames++
					continue
				default:
					err = fmt.Errorf("%w, and not all its chunks are held by units or other frames", err)
				}
			}
			switch {
			case err != nil:
				c.problem(c.packRefs[pd], f.Digest.Digest(), "", fmt.Errorf("frame %d of pack %s: %w", i, pd, err))
			case info.Size != int64(f.StoredSize):
				c.problem(c.packRefs[pd], f.Digest.Digest(), "",
					fmt.Errorf("frame %d of pack %s: stored size %d, pack index says %d: %w", i, pd, info.Size, f.StoredSize, store.ErrSizeMismatch))
			}
		}
	}
	c.opts.Progress(CheckProgress{Phase: "frames", Done: total, Total: total})
	c.rep.Frames = len(seen)
	return nil
}

// readData verifies every pack: its frames' bytes, each decoded with every
// chunk checked (once per distinct frame), concatenate to the pack digest.
func (c *checker) readData(ctx context.Context) error {
	var total int64
	for _, pd := range c.packList {
		total += c.packs[pd].Descriptor.Size
	}
	var (
		mu       sync.Mutex
		verified sync.Map // frame digest -> struct{}
		read     int64    // guarded by mu
	)
	report := func(refs []string, blob digest.Digest, err error) {
		mu.Lock()
		defer mu.Unlock()
		c.problem(refs, blob, "", err)
	}
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(c.opts.Workers)
	for _, pd := range c.packList {
		p, refs := c.packs[pd], c.packRefs[pd]
		if err := ctx.Err(); err != nil {
			break
		}
		eg.Go(func() error {
			h := sha256.New()
			ok := true
			for i := range p.Index.Frames {
				f := &p.Index.Frames[i]
				fd := f.Digest.Digest()
				// A virtual frame is regenerated from its chunks and checked
				// against its digest.
				stored, err := c.src.StoredFrame(ctx, f)
				if err == nil && uint64(len(stored)) != f.StoredSize {
					err = fmt.Errorf("%d bytes, pack index says %d: %w", len(stored), f.StoredSize, store.ErrSizeMismatch)
				}
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					if !errors.Is(err, store.ErrNotFound) { // missing frames were reported by statFrames
						report(refs, fd, fmt.Errorf("frame %d of pack %s: %w", i, pd, err))
					}
					ok = false
					continue
				}
				mu.Lock()
				read += int64(len(stored))
				c.opts.Progress(CheckProgress{Phase: "data", Bytes: read, BytesTotal: total})
				mu.Unlock()
				h.Write(stored)
				if _, dup := verified.LoadOrStore(f.Digest, struct{}{}); dup {
					continue
				}
				if _, err := pack.DecodeFrame(f, stored, true); err != nil {
					report(refs, fd, fmt.Errorf("frame %d of pack %s: %w", i, pd, err))
				}
			}
			if got := digest.NewDigest(digest.SHA256, h); ok && got != pd {
				report(refs, pd, fmt.Errorf("frames of pack index %s hash to %s: %w", p.IndexDescriptor.Digest, got, store.ErrDigestMismatch))
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	c.rep.DataBytes = read
	return nil
}

// walkTrees walks every image's tree within reader.DefaultLimits and checks
// that every data chunk is in the image's data packs.
func (c *checker) walkTrees(ctx context.Context) error {
	for i, md := range c.manOrder {
		img := c.images[md]
		if img == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c.opts.Progress(CheckProgress{Phase: "trees", Done: int64(i), Total: int64(len(c.manOrder))})
		have := map[format.ChunkID]bool{}
		for _, p := range img.DataPacks {
			for _, f := range p.Index.Frames {
				for _, ch := range f.Chunks {
					have[ch.ID] = true
				}
			}
		}
		refs := c.manRefs[md]
		cr := reader.NewChunkReader(img, c.src)
		var last string
		err := reader.Walk(ctx, cr, img.Root, reader.DefaultLimits, func(path string, e *format.Entry) error {
			last = path
			if e.Type != format.TypeReg {
				return nil
			}
			for _, x := range e.Extents {
				if !x.Zero && !have[x.Chunk] {
					c.problem(refs, md, path, fmt.Errorf("chunk %s is in none of the image's data packs", x.Chunk))
					return nil
				}
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.problem(refs, md, last, fmt.Errorf("walking tree %s: %w", img.Root, err))
		}
	}
	c.opts.Progress(CheckProgress{Phase: "trees", Done: int64(len(c.manOrder)), Total: int64(len(c.manOrder))})
	return nil
}
