package reader

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/store"
)

// frameCacheBytes bounds the raw bytes of decoded frames a ChunkReader keeps:
// files read in canonical order read frames in order, and parallel readers
// of neighbouring files share them.
const frameCacheBytes = 64 << 20

// chunkLoc is where a chunk lives: raw bytes [off, off+size) of a frame.
type chunkLoc struct {
	pack  *Pack
	frame int32
	off   uint32
	size  uint32
}

// ChunkReader reads verified chunks and tree objects of one image. It is safe
// for concurrent use and caches recently decoded frames.
type ChunkReader struct {
	src      FrameSource
	locs     map[format.ChunkID]chunkLoc
	cache    *frameCache
	virtuals sync.Map // frameKey -> bool, answers of a ChunkSource
}

// NewChunkReader indexes img's chunks by ID. img must come from Open (its
// frames are checked there).
func NewChunkReader(img *Image, src FrameSource) *ChunkReader {
	r := &ChunkReader{src: src, locs: make(map[format.ChunkID]chunkLoc), cache: newFrameCache(frameCacheBytes)}
	add := func(packs []Pack) {
		for pi := range packs {
			p := &packs[pi]
			for fi := range p.Index.Frames {
				var off uint32
				for _, c := range p.Index.Frames[fi].Chunks {
					if _, ok := r.locs[c.ID]; !ok {
						r.locs[c.ID] = chunkLoc{pack: p, frame: int32(fi), off: off, size: c.Size}
					}
					off += c.Size
				}
			}
		}
	}
	add(img.TreePacks)
	add(img.DataPacks)
	return r
}

// Has reports whether the image contains chunk id, and its size.
func (r *ChunkReader) Has(id format.ChunkID) (uint32, bool) {
	l, ok := r.locs[id]
	return l.size, ok
}

// Locate returns the pack and the index in it of the frame holding chunk
// id (for callers that fetch frames ahead of reading them).
func (r *ChunkReader) Locate(id format.ChunkID) (*Pack, int, bool) {
	l, ok := r.locs[id]
	return l.pack, int(l.frame), ok
}

// ReadChunk returns a data or tree chunk's verified bytes (a fresh copy the
// caller may keep and modify).
func (r *ChunkReader) ReadChunk(ctx context.Context, id format.ChunkID) ([]byte, error) {
	var out []byte
	err := r.ViewChunk(ctx, id, func(b []byte) error {
		out = append([]byte(nil), b...)
		return nil
	})
	return out, err
}

// ViewChunk calls fn with a chunk's verified bytes without copying them; fn
// must not modify or keep b.
func (r *ChunkReader) ViewChunk(ctx context.Context, id format.ChunkID, fn func(b []byte) error) error {
	l, ok := r.locs[id]
	if !ok {
		return fmt.Errorf("chunk %s: %w", id, ErrChunkNotFound)
	}
	if cs, ok := r.src.(ChunkSource); ok {
		virtual, err := r.virtual(ctx, cs, l)
		if err != nil {
			return fmt.Errorf("chunk %s: %w", id, err)
		}
		if virtual {
			b, err := cs.ReadChunk(ctx, id)
			if err != nil {
				return fmt.Errorf("chunk %s: %w", id, err)
			}
			if len(b) != int(l.size) {
				return fmt.Errorf("chunk %s: %d bytes, index says %d: %w", id, len(b), l.size, store.ErrSizeMismatch)
			}
			if got := format.Sum(b); got != id {
				return fmt.Errorf("chunk %s: bytes hash to %s: %w", id, got, store.ErrDigestMismatch)
			}
			return fn(b)
		}
	}
	raw, err := r.frame(ctx, l.pack, int(l.frame))
	if err != nil {
		return fmt.Errorf("chunk %s: %w", id, err)
	}
	return fn(raw[l.off : l.off+l.size : l.off+l.size])
}

// virtual asks cs, once per frame, whether l's frame is held only as chunks.
func (r *ChunkReader) virtual(ctx context.Context, cs ChunkSource, l chunkLoc) (bool, error) {
	k := frameKey{l.pack, l.frame}
	if v, ok := r.virtuals.Load(k); ok {
		return v.(bool), nil
	}
	v, err := cs.Virtual(ctx, l.pack, int(l.frame))
	if err != nil {
		return false, err
	}
	r.virtuals.Store(k, v)
	return v, nil
}

// frame returns the decoded raw bytes of frame i of p, every chunk verified.
// The cache is keyed by the frame's place, not its digest: two index
// entries with the same stored bytes may declare other chunks, and each
// list is verified.
func (r *ChunkReader) frame(ctx context.Context, p *Pack, i int) ([]byte, error) {
	f := &p.Index.Frames[i]
	return r.cache.get(ctx, frameKey{p, int32(i)}, func() ([]byte, error) {
		stored, err := r.src.Frame(ctx, p, i)
		if err != nil {
			return nil, err
		}
		return decodeFrame(f, stored)
	})
}

// decodeFrame checks stored against the frame's size and digest, decodes it
// bounded by the raw size the index declares and verifies every chunk ID.
func decodeFrame(f *format.Frame, stored []byte) ([]byte, error) {
	raw, err := pack.DecodeFrame(f, stored, true)
	if err != nil {
		return nil, err
	}
	if uint64(len(raw)) != f.RawSize() { // DecodeFrame promises it; chunk slicing relies on it
		return nil, fmt.Errorf("%w: frame %s: decoded to %d bytes, index says %d",
			ErrInvalidImage, f.Digest, len(raw), f.RawSize())
	}
	return raw, nil
}

// Tree reads and decodes a tree object.
func (r *ChunkReader) Tree(ctx context.Context, id format.ChunkID) (*format.Tree, error) {
	var t *format.Tree
	err := r.ViewChunk(ctx, id, func(b []byte) error {
		if len(b) > format.MaxTreeObjectSize {
			return fmt.Errorf("%w: tree %s: %d bytes over the %d byte limit",
				ErrInvalidImage, id, len(b), format.MaxTreeObjectSize)
		}
		var err error
		t, err = format.DecodeTree(b)
		if err != nil {
			return fmt.Errorf("%w: tree %s: %w", ErrInvalidImage, id, err)
		}
		return nil
	})
	return t, err
}

// frameCache is an LRU of decoded frames bounded by their raw bytes, with
// one load per frame however many readers ask for it at once.
type frameCache struct {
	mu   sync.Mutex
	max  int64
	size int64
	m    map[frameKey]*frameEntry
	lru  list.List // of *frameEntry, most recent first; loaded entries only
}

// frameKey is a frame of a pack.
type frameKey struct {
	p *Pack
	i int32
}

type frameEntry struct {
	key   frameKey
	ready chan struct{}
	raw   []byte
	err   error
	elem  *list.Element
}

func newFrameCache(max int64) *frameCache {
	return &frameCache{max: max, m: make(map[frameKey]*frameEntry)}
}

func (c *frameCache) get(ctx context.Context, key frameKey, load func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if e, ok := c.m[key]; ok {
		if e.elem != nil {
			c.lru.MoveToFront(e.elem)
		}
		c.mu.Unlock()
		select {
		case <-e.ready:
			return e.raw, e.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e := &frameEntry{key: key, ready: make(chan struct{})}
	c.m[key] = e
	c.mu.Unlock()

	raw, err := load()

	c.mu.Lock()
	e.raw, e.err = raw, err
	if err != nil {
		delete(c.m, key) // a later reader retries
	} else {
		e.elem = c.lru.PushFront(e)
		c.size += int64(len(raw))
		for c.size > c.max && c.lru.Len() > 1 {
			old := c.lru.Remove(c.lru.Back()).(*frameEntry)
			delete(c.m, old.key)
			c.size -= int64(len(old.raw))
		}
	}
	c.mu.Unlock()
	close(e.ready)
	return raw, err
}
