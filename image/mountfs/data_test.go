package mountfs

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/oci2/oci2/format"
)

// chunks is a ChunkViewer over a map, counting views.
type chunks struct {
	m     map[format.ChunkID][]byte
	views int
}

func (c *chunks) ViewChunk(_ context.Context, id format.ChunkID, fn func([]byte) error) error {
	b, ok := c.m[id]
	if !ok {
		return fmt.Errorf("chunk %s missing", id)
	}
	c.views++
	return fn(b)
}

// sparseFile is data(8192) zero(32768) data(4096) data(100) zero(40960):
// two data regions, the second ending mid-block, then a trailing hole (as
// SPEC.md §3 allows it: zero extents aligned, at least 32 KiB).
func sparseFile() (*inode, *chunks, []byte) {
	c := &chunks{m: map[format.ChunkID][]byte{}}
	var want []byte
	var ext []format.Extent
	data := func(n int, seed byte) {
		b := bytes.Repeat([]byte{seed}, n)
		id := format.Sum(b)
		c.m[id] = b
		ext = append(ext, format.Extent{Length: uint64(n), Chunk: id})
		want = append(want, b...)
	}
	zero := func(n int) {
		ext = append(ext, format.Extent{Zero: true, Length: uint64(n)})
		want = append(want, make([]byte, n)...)
	}
	data(8192, 1)
	zero(32768)
	data(4096, 2)
	data(100, 3)
	zero(40960)
	in := &inode{e: format.Entry{Type: format.TypeReg, Size: uint64(len(want)), Extents: ext}}
	return in, c, want
}

func TestReadAt(t *testing.T) {
	in, c, want := sparseFile()
	for _, tc := range []struct{ off, n int }{
		{0, len(want)}, {0, 1}, {8191, 2}, {8192, 100}, {len(want) - 10, 100}, {len(want), 10}, {6000, 40000},
	} {
		buf := bytes.Repeat([]byte{0xee}, tc.n)
		got, err := in.readAt(context.Background(), c, buf, uint64(tc.off), nil)
		if err != nil {
			t.Fatalf("readAt(%d, %d): %v", tc.off, tc.n, err)
		}
		end := min(len(want), tc.off+tc.n)
		if tc.off > len(want) {
			end = tc.off
		}
		if got != end-tc.off || !bytes.Equal(buf[:got], want[tc.off:end]) {
			t.Errorf("readAt(%d, %d) = %d bytes, want %d matching the file", tc.off, tc.n, got, end-tc.off)
		}
	}
}

func TestSeekAndBlocks(t *testing.T) {
	in, _, want := sparseFile()
	size := uint64(len(want))
	dataStart := uint64(8192 + 32768) // second region
	if d, ok := in.seekData(0); !ok || d != 0 {
		t.Errorf("SEEK_DATA 0 = %d, %v", d, ok)
	}
	if d, ok := in.seekData(8192); !ok || d != dataStart {
		t.Errorf("SEEK_DATA in the hole = %d, %v; want %d", d, ok, dataStart)
	}
	if _, ok := in.seekData(dataStart + 4196); ok {
		t.Errorf("SEEK_DATA in the trailing hole found data")
	}
	if h := in.seekHole(0); h != 8192 {
		t.Errorf("SEEK_HOLE 0 = %d, want 8192", h)
	}
	if h := in.seekHole(dataStart + 1); h != dataStart+4196 {
		t.Errorf("SEEK_HOLE in the second region = %d, want %d", h, dataStart+4196)
	}
	if h := in.seekHole(size - 1); h != size-1 {
		t.Errorf("SEEK_HOLE in the trailing hole = %d", h)
	}
	// 8192 bytes: 2 blocks; 4196 bytes: 2 blocks; 8 sectors each.
	if b := in.blocks(); b != 32 {
		t.Errorf("blocks = %d, want 32", b)
	}
}

func TestFetchAhead(t *testing.T) {
	in, _, _ := sparseFile()
	var calls [][]format.ChunkID
	fetch := func(_ context.Context, ids []format.ChunkID) error {
		calls = append(calls, ids)
		return nil
	}
	for range 3 {
		if err := in.fetch(context.Background(), fetch, 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(calls) != 1 || len(calls[0]) != 3 {
		t.Errorf("a small file is fetched whole once: calls %v", calls)
	}
}
