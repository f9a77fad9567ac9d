package index

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/store"
)

// Store is what an Index needs: blobs to read and write, refs to scan,
// unit descriptors, durability of blobs a write relies on, and where the
// store keeps its index files (store.IndexHome: New uses them unless told
// otherwise, so no caller can forget them and scan the store instead).
type Store interface {
	store.Reader
	store.Writer
	store.HashedWriter
	store.Refs
	store.Syncer
	store.Units
	store.IndexHome
}

// DefaultCacheBytes bounds the decoded blobs an Index keeps for ReadChunk.
const DefaultCacheBytes = 32 << 20

// Defaults of the unit policy (see Index).
const (
	// DefaultVirtualMin is the share of a new frame's raw bytes the store
	// must already hold for the frame to be kept virtual.
	DefaultVirtualMin = 0.25
	// DefaultUnitSize is the raw size at which buffered new chunks are
	// compressed into a unit.
	DefaultUnitSize = 8 << 20
)

// Index locates what a Store holds: blobs that hold chunks, canonical
// frames (found through the pack indexes of the store's refs) and units
// (SPEC.md §8, found through the store's unit descriptors), and canonical
// frames by frame key: stored ones, whose blob is present, and virtual ones,
// whose chunks are all held by other blobs. It is safe for concurrent use.
//
// An Index does not write blobs: a write goes through a Session
// (WithSession), which owns the write's unit buffer, its seals and its
// counters, and adds what it stores to the Index. Sessions may run at once
// over one Index.
//
// A typical writer builds one Index per process, runs each write in a
// Session, and calls Refresh before a new write to pick up images stored
// meanwhile by other processes. Unless the store has no index directory
// (Store.IndexDir) or the Index is InMemory, what New and Refresh scan and
// what sessions store is saved in index files shared by every process
// (SPEC.md §8.2): New then scans only what no file covers, and lookups
// search the files in place.
//
// A long-lived Index can go stale when another process deletes blobs (an
// external gc). Session.LookupFrame therefore checks that the blobs a frame
// it offers relies on are still stored, and ReadChunk drops a blob that is
// gone: its chunks are located again in other blobs, frames stored as it
// are forgotten, and the next Refresh looks for them again.
type Index struct {
	st    Store
	units store.Units // nil: no units, no virtual frames
	cfg   config
	cache *blobCache
	warm  atomic.Bool // the last Refresh found chunks
	scans scanCounters

	mu      sync.Mutex
	blobs   []blob
	byBlob  map[format.ChunkID]int32 // blob digest -> blobs index
	frames  map[format.ChunkID]frameRec
	chunks  map[format.ChunkID]chunkLoc
	packs   map[digest.Digest]digest.Digest // pack index digest -> pack digest
	pending map[format.ChunkID]format.Frame // frames referenced, blob missing, not (yet) virtual
	// recheck are pending frames already saved to an index file, which
	// Refresh still looks for (their blob may come back)
	recheck map[format.ChunkID]format.Frame

	// dropped are frames whose blob (or a chunk's) was found missing since
	// the last scan, by key, and unitsGone units whose blob was; the next
	// Refresh looks for them again.
	dropped   map[format.ChunkID]format.Frame
	unitsGone map[digest.Digest]bool

	// gone are blobs found missing: entries of index files naming them are
	// skipped until a scan or a session adds them again.
	gone map[format.ChunkID]bool

	// The index files open (see tables.go), and what this Index learnt
	// since it last wrote one: blobs not saved, frames, pending, and the
	// fields below. dir is empty for an Index kept in memory only.
	dir      string
	tabs     []*table
	tabNames map[string]bool
	newDone  map[digest.Digest]bool
	newUnits map[digest.Digest]bool
	newPacks map[digest.Digest]digest.Digest

	// opening is set while New scans (see runEntries); blobChunks counts
	// the chunks of blobs' descriptions, and heldMax the most a scan held
	// (inMemoryLocked).
	opening       bool
	blobChunks    int
	pendingChunks int // of the frames a scan made pending (at most)
	heldMax       atomic.Int64

	scanMu    sync.Mutex             // one scan at a time; guards the fields below
	done      map[digest.Digest]bool // manifests, image indexes and pack indexes scanned
	unitsDone map[digest.Digest]bool // unit descriptors read
}

// blob is a blob holding chunks: a canonical frame or a unit. Both are
// described as a frame (a unit is an ordinary frame of its own chunks).
type blob struct {
	f    format.Frame
	unit bool // described in the store's units (a unit, or a pinned frame)
	gone bool // found missing (see dropBlob)
	kept bool // stored or kept by a session of this Index (see keepBlobs)
	// saved: an index file says what this entry says (read from one, or
	// written to one since it last changed)
	saved bool
}

// frameRec is a canonical frame: blob is its blob, or -1 when it is virtual.
type frameRec struct {
	f    format.Frame
	blob int32
}

type chunkLoc struct {
	blob   int32
	offset uint32 // in the blob's raw bytes
	size   uint32
}

type config struct {
	units      store.Units
	unitsSet   bool
	virtualMin float64
	unitSize   int
	warm       bool
	cacheBytes int
	dir        string
	dirSet     bool
}

// Option configures New.
type Option func(*config)

// WithUnits sets where unit descriptors live (by default the Store); nil
// disables units and virtual frames.
func WithUnits(us store.Units) Option {
	return func(c *config) { c.units, c.unitsSet = us, true }
}

// WithVirtualMin sets the share of a new frame's raw bytes the store must
// hold already for the frame to be kept virtual (default DefaultVirtualMin).
func WithVirtualMin(f float64) Option { return func(c *config) { c.virtualMin = f } }

// WithWarmUnits sets whether, in a store that held chunks at the last
// Refresh, every new frame the Packer puts is kept virtual, its chunks in
// units (default true). Units compress better than frames (they are larger);
// the price is a second compression of new data, so the first image of an
// empty store keeps its frames.
func WithWarmUnits(on bool) Option { return func(c *config) { c.warm = on } }

// WithCacheBytes bounds the decoded blobs kept for ReadChunk (default
// DefaultCacheBytes).
func WithCacheBytes(n int) Option { return func(c *config) { c.cacheBytes = n } }

// WithDir keeps the index in index files in dir (SPEC.md §8.2) instead of
// the store's own (Store.IndexDir, the default): New reads them instead of
// scanning what they cover, and Refresh and each Session add a file for
// what they found or stored. Processes may share dir. An empty dir keeps
// the Index in memory only (see InMemory).
func WithDir(dir string) Option { return func(c *config) { c.dir, c.dirSet = dir, true } }

// InMemory keeps the Index in memory only, whatever the store's IndexDir:
// New scans every ref, and nothing is saved. It is for a process that must
// not rely on index files other processes change under it.
func InMemory() Option { return WithDir("") }

// WithUnitSize sets the raw size of units (default DefaultUnitSize; at most
// format.MaxFrameRawSize).
func WithUnitSize(n int) Option { return func(c *config) { c.unitSize = n } }

// New returns the index of st: read from the store's index files
// (Store.IndexDir, or WithDir) where they cover it, by a scan of what they
// do not cover; a store without index files is scanned whole.
func New(ctx context.Context, st Store, opts ...Option) (*Index, error) {
	cfg := config{virtualMin: DefaultVirtualMin, unitSize: DefaultUnitSize, warm: true, cacheBytes: DefaultCacheBytes}
	for _, o := range opts {
		o(&cfg)
	}
	if !cfg.unitsSet {
		cfg.units = st
	}
	if !cfg.dirSet {
		cfg.dir = st.IndexDir()
	}
	cfg.unitSize = min(max(cfg.unitSize, 1), format.MaxFrameRawSize)
	x := &Index{
		st:        st,
		units:     cfg.units,
		cfg:       cfg,
		cache:     newBlobCache(cfg.cacheBytes),
		byBlob:    make(map[format.ChunkID]int32),
		frames:    make(map[format.ChunkID]frameRec),
		chunks:    make(map[format.ChunkID]chunkLoc),
		packs:     make(map[digest.Digest]digest.Digest),
		pending:   make(map[format.ChunkID]format.Frame),
		recheck:   make(map[format.ChunkID]format.Frame),
		dropped:   make(map[format.ChunkID]format.Frame),
		unitsGone: make(map[digest.Digest]bool),
		done:      make(map[digest.Digest]bool),
		unitsDone: make(map[digest.Digest]bool),
		gone:      make(map[format.ChunkID]bool),
		dir:       cfg.dir,
		tabNames:  make(map[string]bool),
		newDone:   make(map[digest.Digest]bool),
		newUnits:  make(map[digest.Digest]bool),
		newPacks:  make(map[digest.Digest]digest.Digest),
	}
	if err := x.openDir(); err != nil {
		return nil, err
	}
	x.opening = true
	err := x.Refresh(ctx)
	x.opening = false
	if err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}

// HasChunk reports whether a blob of the store holds chunk id.
func (x *Index) HasChunk(id format.ChunkID) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.heldLocked(id)
}

// unheld returns the chunks no blob holds.
func (x *Index) unheld(chunks []format.ChunkRef) []format.ChunkRef {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []format.ChunkRef
	for _, c := range chunks {
		if !x.heldLocked(c.ID) {
			out = append(out, c)
		}
	}
	return out
}

// notIn returns the chunks that are not keys of m.
func notIn[V any](chunks []format.ChunkRef, m map[format.ChunkID]V) []format.ChunkRef {
	var out []format.ChunkRef
	for _, c := range chunks {
		if _, ok := m[c.ID]; !ok {
			out = append(out, c)
		}
	}
	return out
}

// Len returns the number of indexed frames (stored and virtual) and chunks.
// It visits every entry of every index file: it is for tests and checks.
func (x *Index) Len() (frames, chunks int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.countLocked()
}

// ReadChunk returns the verified bytes of a chunk the store holds, or an
// error wrapping store.ErrNotFound. The caller owns the result.
func (x *Index) ReadChunk(ctx context.Context, id format.ChunkID) ([]byte, error) {
	return x.readChunk(ctx, id, true)
}

// ReadChunkUnchecked is ReadChunk for callers that verify the chunk
// themselves (reader.ChunkReader does): the blob holding it is still
// verified against its digest, but the chunk's bytes are not hashed.
func (x *Index) ReadChunkUnchecked(ctx context.Context, id format.ChunkID) ([]byte, error) {
	return x.readChunk(ctx, id, false)
}

func (x *Index) readChunk(ctx context.Context, id format.ChunkID, verify bool) ([]byte, error) {
	x.mu.Lock()
	loc, ok := x.locateLocked(id)
	var f format.Frame
	if ok {
		f = x.blobs[loc.blob].f
	}
	x.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("chunk %s: %w", id, store.ErrNotFound)
	}
	raw, ok := x.cache.get(loc.blob)
	if !ok {
		stored, err := x.st.ReadBlob(ctx, f.Digest.Digest(), int64(f.StoredSize))
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				x.dropBlob(loc.blob)
			}
			return nil, fmt.Errorf("reading chunk %s: blob %s: %w", id, f.Digest, err)
		}
		raw, err = pack.DecodeFrame(&f, stored, false)
		if err != nil {
			return nil, fmt.Errorf("reading chunk %s: %w", id, err)
		}
		x.cache.put(loc.blob, raw)
	}
	end := uint64(loc.offset) + uint64(loc.size)
	if end > uint64(len(raw)) {
		return nil, fmt.Errorf("chunk %s: beyond its blob %s", id, f.Digest)
	}
	b := append([]byte(nil), raw[loc.offset:end]...)
	if verify && format.Sum(b) != id {
		return nil, fmt.Errorf("chunk %s in blob %s: %w", id, f.Digest, store.ErrDigestMismatch)
	}
	return b, nil
}

// PackDigest returns the digest of the pack described by the pack index
// blob idx, when an image in the store (or RecordPack) names it.
func (x *Index) PackDigest(idx digest.Digest) (digest.Digest, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, ok := x.packs[idx]
	return d, ok
}

// RecordPack remembers that the pack index blob idx describes pack pack.
func (x *Index) RecordPack(idx, pack digest.Digest) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.packs[idx] != pack {
		x.packs[idx] = pack
		x.newPacks[idx] = pack
	}
}

// addStored indexes frame f, whose blob is present, under key; kept says a
// session stored it. A key known already as stored is left as it is; a
// virtual one becomes stored.
func (x *Index) addStored(key format.ChunkID, f format.Frame, kept bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, kind, _ := x.frameLocked(key); kind == kindStored {
		return
	}
	delete(x.pending, key)
	delete(x.recheck, key)
	delete(x.dropped, key)
	n := x.addBlobLocked(f, false)
	x.blobs[n].kept = x.blobs[n].kept || kept
	x.frames[key] = frameRec{f: f, blob: n}
}

// addBlobLocked indexes a blob and its chunks and returns its number. A unit
// takes over the chunks held only by frames that are not units, so that
// virtual frames rely on units where possible (see pin).
func (x *Index) addBlobLocked(f format.Frame, unit bool) int32 {
	delete(x.gone, f.Digest)
	n, ok := x.byBlob[f.Digest]
	if ok {
		if !unit || x.blobs[n].unit {
			return n
		}
		x.blobs[n].unit = true
		x.blobs[n].saved = false
	} else {
		n = int32(len(x.blobs))
		x.blobs = append(x.blobs, blob{f: f, unit: unit})
		x.blobChunks += len(f.Chunks)
		x.byBlob[f.Digest] = n
	}
	var off uint32
	for _, c := range f.Chunks {
		old, ok := x.chunks[c.ID]
		if !ok || (unit && !x.blobs[old.blob].unit) || x.blobs[old.blob].gone {
			x.chunks[c.ID] = chunkLoc{blob: n, offset: off, size: c.Size}
		}
		off += c.Size
	}
	return n
}

// addUnit indexes unit f, stored (or kept) by a session once its
// descriptor is stored: the index file saved next says it was read.
func (x *Index) addUnit(f format.Frame) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.blobs[x.addBlobLocked(f, true)].kept = true
	x.newUnits[f.Digest.Digest()] = true
}

// keepBlobs has the store keep blobs ns (store.Syncer.Keep) unless a
// session of x stored or kept them already: a write that relies on blobs
// it did not write makes them durable with its ref, since the process that
// wrote them may have died before syncing. It reports false, dropping
// them, when some are gone.
func (x *Index) keepBlobs(ctx context.Context, ns []int32) (bool, error) {
	x.mu.Lock()
	var todo []int32
	var ds []digest.Digest
	for _, n := range ns {
		if b := &x.blobs[n]; !b.kept {
			todo = append(todo, n)
			ds = append(ds, b.f.Digest.Digest())
		}
	}
	x.mu.Unlock()
	all := true
	for i, n := range todo {
		err := x.st.Keep(ctx, ds[i])
		if errors.Is(err, store.ErrNotFound) {
			x.dropBlob(n)
			all = false
			continue
		}
		if err != nil {
			return false, fmt.Errorf("keeping blob %s: %w", ds[i], err)
		}
		x.mu.Lock()
		x.blobs[n].kept = true
		x.mu.Unlock()
	}
	return all, nil
}

// holders returns the blobs holding chunks (each once); chunks no blob
// holds are skipped.
func (x *Index) holders(chunks []format.ChunkRef) []int32 {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []int32
	seen := map[int32]bool{}
	for _, c := range chunks {
		if loc, ok := x.locateLocked(c.ID); ok && !seen[loc.blob] {
			seen[loc.blob] = true
			out = append(out, loc.blob)
		}
	}
	return out
}

// addVirtual indexes frames, whose chunks are all held, as virtual (keys
// known already are left as they are).
func (x *Index) addVirtual(frames map[format.ChunkID]format.Frame) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for key, f := range frames {
		delete(x.dropped, key)
		if _, kind, ok := x.frameLocked(key); !ok || kind == kindPending {
			x.frames[key] = frameRec{f: f, blob: -1}
		}
		delete(x.pending, key)
	}
}
