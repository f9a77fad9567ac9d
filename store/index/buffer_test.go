package index

import (
	"context"
	"math/rand"
	"testing"
	"unsafe"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/store/memstore"
)

// TestBufferKeepsOneArray: as the open batch of a session's unit buffer
// grows past its first array, the buffer's chunk slices move to the new
// one, so the outgrown arrays can be collected (each kept all the ones
// before it alive: 7 MiB of heap for 2.4 MB of chunks).
func TestBufferKeepsOneArray(t *testing.T) {
	ctx := context.Background()
	x, err := New(ctx, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	err = x.WithSession(ctx, func(ctx context.Context, s *Session) error {
		for i := 0; i < 40; i++ { // 2.5 MiB: the open batch grows twice
			raw := make([]byte, 64<<10)
			rng.Read(raw)
			refs := []format.ChunkRef{{ID: format.Sum(raw), Size: uint32(len(raw))}}
			enc, stored := pack.EncodeFrame(raw)
			f := format.Frame{Encoding: enc, StoredSize: uint64(len(stored)), Digest: format.Sum(stored), Chunks: refs}
			if _, err := s.putVirtual(ctx, pack.FrameKey(refs), f, stored, true, false); err != nil {
				return err
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		o := s.ub.open
		if len(o.chunks) != 40 {
			t.Fatalf("%d chunks in the open batch, want 40", len(o.chunks))
		}
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(o.data)))
		hi := lo + uintptr(cap(o.data))
		for _, c := range o.chunks {
			p := uintptr(unsafe.Pointer(unsafe.SliceData(s.ub.chunks[c.ID])))
			if p < lo || p >= hi {
				t.Fatalf("chunk %s points outside the open batch's array", c.ID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
