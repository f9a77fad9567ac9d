package reader

import (
	"context"
	"fmt"

	"github.com/oci2/oci2/store"
)

type localFrames struct{ r store.Reader }

// Frame reads the frame blob by its digest; the store verifies it and the
// read is bounded by the stored size the index declares.
func (s localFrames) Frame(ctx context.Context, p *Pack, i int) ([]byte, error) {
	f := &p.Index.Frames[i]
	b, err := s.r.ReadBlob(ctx, f.Digest.Digest(), int64(f.StoredSize))
	if err != nil {
		return nil, fmt.Errorf("frame %s: %w", f.Digest, err)
	}
	return b, nil
}

type packRanges struct{ r store.RangeReader }

// Frame reads [offset, offset+StoredSize) of the pack blob.
func (s packRanges) Frame(ctx context.Context, p *Pack, i int) ([]byte, error) {
	f := &p.Index.Frames[i]
	off := p.FrameOffset(i)
	b, err := s.r.ReadRange(ctx, p.Descriptor.Digest, int64(off), int64(f.StoredSize))
	if err != nil {
		return nil, fmt.Errorf("pack %s range [%d, %d): %w", p.Descriptor.Digest, off, off+f.StoredSize, err)
	}
	return b, nil
}
