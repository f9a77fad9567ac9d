package writer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
)

// refetcher gets the bytes of chunks the writer added without data (known
// extents) when the store does not hold them: it reads them again from the
// file, at the offset the extents give, and checks their ID.
//
// Every chunk is registered with its location before it is added to the
// Packer, so a fetch never depends on how far the consumer got in a file
// (a frame may close in the middle of a file whose later chunks are not
// added yet).
type refetcher struct {
	mu  sync.Mutex
	src map[format.ChunkID]chunkSrc
}

// chunkSrc is where a chunk's bytes are in a file.
type chunkSrc struct {
	w    *wnode
	off  uint64
	size uint32
}

func newRefetcher() *refetcher {
	return &refetcher{src: make(map[format.ChunkID]chunkSrc)}
}

// register records that w holds chunk id at offset off. The first file
// registered for a chunk is the one it is read from.
func (r *refetcher) register(id format.ChunkID, w *wnode, off uint64, size uint32) {
	r.mu.Lock()
	if _, ok := r.src[id]; !ok {
		r.src[id] = chunkSrc{w: w, off: off, size: size}
	}
	r.mu.Unlock()
}

// fetchFunc is the Packer's Fetch: the store's frames first, then the files.
// Both paths return only bytes whose sha256 is the chunk ID.
func fetchFunc(s *index.Session, r *refetcher) func(context.Context, format.ChunkID) ([]byte, error) {
	return func(ctx context.Context, id format.ChunkID) ([]byte, error) {
		b, err := s.ReadChunk(ctx, id)
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			return b, err
		}
		return r.fetch(id)
	}
}

// fetch reads chunk id from the file registered for it and verifies it.
func (r *refetcher) fetch(id format.ChunkID) ([]byte, error) {
	r.mu.Lock()
	s, ok := r.src[id]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("chunk %s: %w", id, store.ErrNotFound)
	}
	b, err := readAt(s.w.n.Content, s.off, s.size)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", describe(s.w), err)
	}
	if format.Sum(b) != id {
		return nil, fmt.Errorf("%s changed: the %d bytes at offset %d are no longer chunk %s",
			describe(s.w), s.size, s.off, id)
	}
	// The Packer asks for each chunk once.
	r.mu.Lock()
	delete(r.src, id)
	r.mu.Unlock()
	return b, nil
}

// readAt reads size bytes at offset off of c: positioned when the content
// opens as an io.ReaderAt (an *os.File), otherwise by skipping.
func readAt(c Content, off uint64, size uint32) ([]byte, error) {
	rc, err := c.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, size)
	if ra, ok := rc.(io.ReaderAt); ok {
		_, err = ra.ReadAt(b, int64(off))
	} else if sk, ok := rc.(io.Seeker); ok {
		if _, err = sk.Seek(int64(off), io.SeekStart); err == nil {
			_, err = io.ReadFull(rc, b)
		}
	} else if _, err = io.CopyN(io.Discard, rc, int64(off)); err == nil {
		_, err = io.ReadFull(rc, b)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("shorter than %d bytes: the file changed", off+uint64(size))
	}
	return b, err
}
