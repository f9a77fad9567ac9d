package index

import (
	"context"
	"errors"
	"fmt"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/store"
)

// StoredFrame returns the canonical stored bytes of frame f: its blob when
// present, else the frame regenerated from its chunks with the pinned
// encoder (SPEC.md §8), checked against f's digest. A frame the store can
// neither read nor regenerate fails with an error wrapping
// store.ErrNotFound; one whose chunks re-encode to other bytes (another
// encoder made it) with store.ErrDigestMismatch.
func (x *Index) StoredFrame(ctx context.Context, f *format.Frame) ([]byte, error) {
	return storedFrame(ctx, x.st, f, x.ReadChunk)
}

// chunkFunc reads a verified chunk.
type chunkFunc func(context.Context, format.ChunkID) ([]byte, error)

func storedFrame(ctx context.Context, st store.Reader, f *format.Frame, read chunkFunc) ([]byte, error) {
	b, err := st.ReadBlob(ctx, f.Digest.Digest(), int64(f.StoredSize))
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return b, err
	}
	raw, err := rawFrame(ctx, f, read)
	if err != nil {
		return nil, err
	}
	enc, stored := pack.EncodeFrame(raw)
	if enc != f.Encoding || uint64(len(stored)) != f.StoredSize || format.Sum(stored) != f.Digest {
		return nil, fmt.Errorf("frame %s: its chunks encode to %s (%d bytes), not to the frame (made by another encoder?): %w",
			f.Digest, format.Sum(stored), len(stored), store.ErrDigestMismatch)
	}
	return stored, nil
}

// RawFrame returns the raw bytes of frame f read chunk by chunk from the
// blobs holding them (every chunk verified), without its own blob.
func (x *Index) RawFrame(ctx context.Context, f *format.Frame) ([]byte, error) {
	return rawFrame(ctx, f, x.ReadChunk)
}

func rawFrame(ctx context.Context, f *format.Frame, read chunkFunc) ([]byte, error) {
	raw := make([]byte, 0, f.RawSize())
	for _, c := range f.Chunks {
		b, err := read(ctx, c.ID)
		if err != nil {
			return nil, fmt.Errorf("frame %s: %w", f.Digest, err)
		}
		if len(b) != int(c.Size) {
			return nil, fmt.Errorf("frame %s: chunk %s has %d bytes, the frame says %d: %w",
				f.Digest, c.ID, len(b), c.Size, store.ErrSizeMismatch)
		}
		raw = append(raw, b...)
	}
	return raw, nil
}

// Locatable reports whether the store holds every chunk of f (so f can be
// read, and regenerated, without its blob).
func (x *Index) Locatable(f *format.Frame) bool { return len(x.unheld(f.Chunks)) == 0 }

// Holders returns the blobs (frame or unit digests, each once) holding
// chunks, or ok false when one of them is held by none.
func (x *Index) Holders(chunks []format.ChunkRef) (blobs []format.ChunkID, ok bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	seen := map[int32]bool{}
	for _, c := range chunks {
		loc, ok := x.locateLocked(c.ID)
		if !ok {
			return nil, false
		}
		if !seen[loc.blob] {
			seen[loc.blob] = true
			blobs = append(blobs, x.blobs[loc.blob].f.Digest)
		}
	}
	return blobs, true
}
