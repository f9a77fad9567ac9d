package writer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/oci2/oci2/chunking"
	"github.com/oci2/oci2/chunkstore"
	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/storeindex"
)

// refetcher gets the bytes of chunks the writer added without data (known
// extents) when the store does not hold them: it reads the file again.
type refetcher struct {
	mu   sync.Mutex
	src  map[format.ChunkID]*wnode
	got  map[format.ChunkID][]byte
	read map[*wnode]bool
}

func newRefetcher() *refetcher {
	return &refetcher{
		src:  make(map[format.ChunkID]*wnode),
		got:  make(map[format.ChunkID][]byte),
		read: make(map[*wnode]bool),
	}
}

func (r *refetcher) register(id format.ChunkID, w *wnode) {
	r.mu.Lock()
	if _, ok := r.src[id]; !ok {
		r.src[id] = w
	}
	r.mu.Unlock()
}

// fetchFunc is the Packer's Fetch: the store's frames first, then the files.
func fetchFunc(idx *storeindex.Index, r *refetcher) func(context.Context, format.ChunkID) ([]byte, error) {
	return func(ctx context.Context, id format.ChunkID) ([]byte, error) {
		b, err := idx.ReadChunk(ctx, id)
		if err == nil || !errors.Is(err, chunkstore.ErrNotFound) {
			return b, err
		}
		return r.fetch(id)
	}
}

func (r *refetcher) fetch(id format.ChunkID) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.got[id]; ok {
		delete(r.got, id)
		return b, nil
	}
	w, ok := r.src[id]
	if !ok {
		return nil, fmt.Errorf("chunk %s: %w", id, chunkstore.ErrNotFound)
	}
	if !r.read[w] {
		r.read[w] = true
		err := splitContent(chunking.NewSplitter(), w, func(e format.Extent, data []byte) error {
			if !e.Zero && r.src[e.Chunk] == w {
				r.got[e.Chunk] = append([]byte(nil), data...)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	b, ok := r.got[id]
	if !ok {
		return nil, fmt.Errorf("%s changed: chunk %s is no longer in it", describe(w), id)
	}
	delete(r.got, id)
	return b, nil
}
