package index

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/oci2/oci2/format"
)

// TestBatchGrowthRepoints: a batch growing from 1 MiB to a whole unit keeps
// every buffered chunk's slice in its current array, so the arrays it
// outgrew can be freed (slices left in them held about four times the unit
// at a large create's peak). After a give-back's prepend too.
func TestBatchGrowthRepoints(t *testing.T) {
	const size, limit = 48 << 10, 8<<20 + format.ChunkMaxSize
	buffered := map[format.ChunkID][]byte{}
	want := map[format.ChunkID][]byte{}
	chunk := func(i int) (format.ChunkRef, []byte) {
		b := bytes.Repeat(binary.LittleEndian.AppendUint32(nil, uint32(i)), size/4)
		c := format.ChunkRef{ID: format.Sum(b), Size: size}
		want[c.ID] = b
		return c, b
	}
	check := func(o *batch, what string) {
		t.Helper()
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(o.data)))
		hi := lo + uintptr(cap(o.data))
		for _, c := range o.chunks {
			b := buffered[c.ID]
			if p := uintptr(unsafe.Pointer(unsafe.SliceData(b))); p < lo || p >= hi {
				t.Fatalf("%s: chunk %s points outside the batch's array (%d chunks, cap %d)", what, c.ID, len(o.chunks), cap(o.data))
			}
			if !bytes.Equal(b, want[c.ID]) {
				t.Fatalf("%s: chunk %s has other bytes", what, c.ID)
			}
		}
	}
	var o batch
	grew := 0
	for i := 0; len(o.data) < 8<<20; i++ {
		before := cap(o.data)
		c, b := chunk(i)
		o.add(c, b, limit, buffered)
		if cap(o.data) != before {
			grew++
		}
	}
	if grew < 3 || cap(o.data) > limit {
		t.Fatalf("batch grew %d times to cap %d (limit %d)", grew, cap(o.data), limit)
	}
	check(&o, "grown")

	// A batch given back in front of the open one: both re-pointed.
	var back batch
	for i := 1000; i < 1010; i++ {
		c, b := chunk(i)
		back.add(c, b, limit, buffered)
	}
	o.prepend(back, buffered)
	check(&o, "given back")
}
