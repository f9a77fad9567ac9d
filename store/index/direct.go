package index

import (
	"context"
	"fmt"

	"github.com/oci2/oci2/format"
)

// A write into a warm store keeps its new frames virtual and compresses
// their new chunks again into units (SPEC.md §8.1): that pays when a write
// fills units, which compress better than frames. A small write never
// fills one, and its second compression, with an encoder sized for units,
// costs about as much as the rest of the write. So while a session has
// sealed no unit, it keeps the stored bytes of each frame it made virtual by
// the warm rule alone whose chunks were all new (a direct frame); at Flush,
// if still no unit was sealed, each direct frame no other frame relies on
// gets its own blob, as in an empty store, and leaves the buffer. The bytes
// kept are bounded by a unit (the first seal drops them), and writes that
// fill a unit store exactly what they did before.

// directFrame is a frame that may yet get its blob: the stored bytes the
// Packer made (nil when the frame is raw: its bytes are then in the open
// batch from start on).
type directFrame struct {
	f      format.Frame
	stored []byte
	start  int
}

// noteRelied records the buffered chunks among chunks as relied on: a
// frame holding them stays virtual, so that they stay in a unit.
// Callers hold s.mu.
func (s *Session) noteRelied(chunks []format.ChunkRef) {
	for _, c := range chunks {
		if _, ok := s.ub.chunks[c.ID]; ok {
			s.relied[c.ID] = struct{}{}
		}
	}
}

// storeDirectLocked stores the blob of each direct frame whose chunks
// nothing else relied on, indexes it as stored, and takes its chunks out of
// the unit buffer, unless the session sealed a unit (s.direct is nil then).
// It runs under s.mu, so no frame comes to rely on those chunks meanwhile.
func (s *Session) storeDirectLocked(ctx context.Context) error {
	if len(s.direct) == 0 || s.ub.inflight > 0 {
		return nil
	}
	o := &s.ub.open
	gone := make(map[format.ChunkID]bool)
	for key, d := range s.direct {
		if s.anyRelied(d.f.Chunks) {
			continue
		}
		stored := d.stored
		if stored == nil {
			stored = o.data[d.start : d.start+int(d.f.StoredSize)]
		}
		if err := s.x.st.PutHashedBlob(ctx, d.f.Digest.Digest(), stored); err != nil {
			return fmt.Errorf("storing frame %s: %w", d.f.Digest, err)
		}
		s.written.Add(int64(len(stored)))
		s.virtual.Add(-1)
		// Indexed as stored before its chunks leave the buffer, so a chunk
		// is always found in one or the other.
		s.x.addStored(key, d.f, true)
		delete(s.frames, key)
		delete(s.direct, key)
		for _, c := range d.f.Chunks {
			gone[c.ID] = true
			delete(s.ub.chunks, c.ID)
		}
	}
	clear(s.direct) // the others stay virtual
	if len(gone) == 0 {
		return nil
	}
	var rest batch
	off := 0
	for _, c := range o.chunks {
		b := o.data[off : off+int(c.Size)]
		off += int(c.Size)
		if !gone[c.ID] {
			rest.chunks = append(rest.chunks, c)
			rest.data = append(rest.data, b...)
		}
	}
	rest.repoint(s.ub.chunks) // the old data can go
	s.ub.open = rest
	return nil
}

// anyRelied reports whether one of chunks was relied on.
func (s *Session) anyRelied(chunks []format.ChunkRef) bool {
	for _, c := range chunks {
		if _, ok := s.relied[c.ID]; ok {
			return true
		}
	}
	return false
}
