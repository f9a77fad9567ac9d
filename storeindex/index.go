package storeindex

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/chunkstore"
	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/pack"
)

// Store is what an Index needs: blobs to read and write, and refs to scan.
type Store interface {
	chunkstore.Reader
	chunkstore.Writer
	chunkstore.Refs
}

// DefaultCacheBytes bounds the decoded frames an Index keeps for ReadChunk.
const DefaultCacheBytes = 32 << 20

// Index implements pack.FrameStore over a Store. It knows every frame that
// some ref reaches through a pack index and whose blob is present, plus the
// frames put through it. It is safe for concurrent use.
//
// A typical writer builds one Index per process, passes it to the Packer as
// its FrameStore and Fetch (ReadChunk), and calls Refresh before a new write
// to pick up images stored meanwhile by other processes.
//
// A long-lived Index can go stale when another process deletes frames (an
// external gc). LookupFrame therefore checks that the blob of a frame it
// offers is still stored, and ReadChunk drops a frame whose blob is gone:
// such a frame is forgotten (its chunks too, unless another frame holds
// them) and looked for again by the next Refresh.
type Index struct {
	st    Store
	cache *frameCache

	mu     sync.RWMutex
	frames []format.Frame // by frame number
	byKey  map[format.ChunkID]int32
	chunks map[format.ChunkID]chunkLoc
	packs  map[digest.Digest]digest.Digest // pack index digest -> pack digest

	// dropped are frames found missing since the last scan (by key); the
	// next Refresh moves them to pending. Guarded by mu.
	dropped map[format.ChunkID]format.Frame

	scanMu  sync.Mutex                      // one scan at a time; guards the fields below
	done    map[digest.Digest]bool          // manifests, image indexes and pack indexes scanned
	pending map[format.ChunkID]format.Frame // frames referenced but not stored (by key)
}

type chunkLoc struct {
	frame  int32
	offset uint32 // in the frame's raw bytes
	size   uint32
}

// New scans st and returns its index.
func New(ctx context.Context, st Store) (*Index, error) {
	x := &Index{
		st:      st,
		cache:   newFrameCache(DefaultCacheBytes),
		byKey:   make(map[format.ChunkID]int32),
		chunks:  make(map[format.ChunkID]chunkLoc),
		packs:   make(map[digest.Digest]digest.Digest),
		dropped: make(map[format.ChunkID]format.Frame),
		done:    make(map[digest.Digest]bool),
		pending: make(map[format.ChunkID]format.Frame),
	}
	if err := x.Refresh(ctx); err != nil {
		return nil, err
	}
	return x, nil
}

// LookupFrame returns the frame stored under key, if any. A frame is
// offered only after a Stat shows its blob still stored with its size;
// otherwise it is dropped from the index and reported not found, so the
// caller makes and puts it again.
func (x *Index) LookupFrame(ctx context.Context, key format.ChunkID) (format.Frame, bool, error) {
	x.mu.RLock()
	i, ok := x.byKey[key]
	var f format.Frame
	if ok {
		f = x.frames[i]
	}
	x.mu.RUnlock()
	if !ok {
		return format.Frame{}, false, nil
	}
	stored, err := x.stored(ctx, f)
	if err != nil {
		return format.Frame{}, false, fmt.Errorf("frame %s: %w", f.Digest, err)
	}
	if !stored {
		x.drop(key, i)
		return format.Frame{}, false, nil
	}
	return f, true, nil
}

// PutFrame stores a frame's stored bytes as the blob f.Digest (idempotent)
// and indexes it under key.
func (x *Index) PutFrame(ctx context.Context, key format.ChunkID, f format.Frame, stored []byte) error {
	if uint64(len(stored)) != f.StoredSize {
		return fmt.Errorf("frame %s: stored %d bytes, frame says %d: %w",
			f.Digest, len(stored), f.StoredSize, chunkstore.ErrSizeMismatch)
	}
	if err := x.st.PutBlob(ctx, f.Digest.Digest(), stored); err != nil {
		return fmt.Errorf("storing frame %s: %w", f.Digest, err)
	}
	x.add(key, f)
	return nil
}

// HasChunk reports whether a stored frame holds chunk id.
func (x *Index) HasChunk(id format.ChunkID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.chunks[id]
	return ok
}

// Len returns the number of indexed frames and chunks.
func (x *Index) Len() (frames, chunks int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byKey), len(x.chunks)
}

// ReadChunk returns the verified bytes of a chunk held by an indexed frame,
// or an error wrapping chunkstore.ErrNotFound. The caller owns the result.
func (x *Index) ReadChunk(ctx context.Context, id format.ChunkID) ([]byte, error) {
	x.mu.RLock()
	loc, ok := x.chunks[id]
	var f format.Frame
	if ok {
		f = x.frames[loc.frame]
	}
	x.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("chunk %s: %w", id, chunkstore.ErrNotFound)
	}
	raw, ok := x.cache.get(loc.frame)
	if !ok {
		stored, err := x.st.ReadBlob(ctx, f.Digest.Digest(), int64(f.StoredSize))
		if err != nil {
			if errors.Is(err, chunkstore.ErrNotFound) {
				x.drop(pack.FrameKey(f.Chunks), loc.frame)
			}
			return nil, fmt.Errorf("reading chunk %s: frame %s: %w", id, f.Digest, err)
		}
		raw, err = pack.DecodeFrame(&f, stored, false)
		if err != nil {
			return nil, fmt.Errorf("reading chunk %s: %w", id, err)
		}
		x.cache.put(loc.frame, raw)
	}
	end := uint64(loc.offset) + uint64(loc.size)
	if end > uint64(len(raw)) {
		return nil, fmt.Errorf("chunk %s: beyond its frame %s", id, f.Digest)
	}
	b := append([]byte(nil), raw[loc.offset:end]...)
	if format.Sum(b) != id {
		return nil, fmt.Errorf("chunk %s in frame %s: %w", id, f.Digest, chunkstore.ErrDigestMismatch)
	}
	return b, nil
}

// PackDigest returns the digest of the pack described by the pack index
// blob idx, when an image in the store (or RecordPack) names it.
func (x *Index) PackDigest(idx digest.Digest) (digest.Digest, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	d, ok := x.packs[idx]
	return d, ok
}

// RecordPack remembers that the pack index blob idx describes pack pack.
func (x *Index) RecordPack(idx, pack digest.Digest) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.packs[idx] = pack
}

// drop forgets frame i, indexed under key, whose blob is gone. Its chunks
// are located again in the other frames (a rare, linear pass).
func (x *Index) drop(key format.ChunkID, i int32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if j, ok := x.byKey[key]; !ok || j != i {
		return // dropped, or dropped and added again, meanwhile
	}
	f := x.frames[i]
	delete(x.byKey, key)
	x.frames[i] = format.Frame{}
	x.dropped[key] = f
	lost := make(map[format.ChunkID]bool)
	for _, c := range f.Chunks {
		if loc, ok := x.chunks[c.ID]; ok && loc.frame == i {
			delete(x.chunks, c.ID)
			lost[c.ID] = true
		}
	}
	for n := 0; n < len(x.frames) && len(lost) > 0; n++ {
		var off uint32
		for _, c := range x.frames[n].Chunks {
			if lost[c.ID] {
				x.chunks[c.ID] = chunkLoc{frame: int32(n), offset: off, size: c.Size}
				delete(lost, c.ID)
			}
			off += c.Size
		}
	}
}

// has reports whether a frame is indexed under key (without checking its
// blob).
func (x *Index) has(key format.ChunkID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.byKey[key]
	return ok
}

// add indexes frame f under key; a key already known is left as it is.
func (x *Index) add(key format.ChunkID, f format.Frame) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.byKey[key]; ok {
		return
	}
	n := int32(len(x.frames))
	x.frames = append(x.frames, f)
	x.byKey[key] = n
	delete(x.dropped, key)
	var off uint32
	for _, c := range f.Chunks {
		if _, ok := x.chunks[c.ID]; !ok {
			x.chunks[c.ID] = chunkLoc{frame: n, offset: off, size: c.Size}
		}
		off += c.Size
	}
}
