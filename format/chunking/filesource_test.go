package chunking

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/oci2/oci2/format"
)

func writeSparse(t *testing.T, dir string, ps []piece, data []byte) *os.File {
	t.Helper()
	f, err := os.CreateTemp(dir, "sparse")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	off := 0
	for _, p := range ps {
		if !(p.kind == pZeros && p.hole) {
			if _, err := f.WriteAt(data[off:off+p.n], int64(off)); err != nil {
				t.Fatal(err)
			}
		}
		off += p.n
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSplitFileMatchesSplit(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(11))
	s := NewSplitter()
	fixed := [][]piece{
		// a hole next to short zero runs that only together reach 32 KiB
		{{kind: pRandom, n: 4096}, {kind: pZeros, n: 8192, hole: true}, {kind: pZeros, n: 12288}, {kind: pZeros, n: 12288, hole: true}, {kind: pRandom, n: 100}},
		// short hole between data: stays data
		{{kind: pRandom, n: 8192}, {kind: pZeros, n: 8192, hole: true}, {kind: pRandom, n: 5000}},
		// holes at both ends, unaligned size
		{{kind: pZeros, n: 1 << 20, hole: true}, {kind: pRandom, n: 70000}, {kind: pZeros, n: 200000, hole: true}},
		// only a hole, with a partial final block
		{{kind: pZeros, n: 100000, hole: true}},
		// data at an unaligned end after a hole
		{{kind: pRandom, n: 5000}, {kind: pZeros, n: 1 << 20, hole: true}, {kind: pRandom, n: 3}},
		// a hole then written zeros then a hole
		{{kind: pRandom, n: 4096}, {kind: pZeros, n: 65536, hole: true}, {kind: pZeros, n: 65536}, {kind: pZeros, n: 65536, hole: true}, {kind: pRandom, n: 4096}},
	}
	for i := 0; i < len(fixed)+60; i++ {
		var ps []piece
		if i < len(fixed) {
			ps = fixed[i]
		} else {
			ps = genPieces(rng)
		}
		data := render(rng, ps)
		f := writeSparse(t, dir, ps, data)
		want := collect(t, func(emit EmitFunc) error { return s.Split(bytes.NewReader(data), int64(len(data)), emit) })
		got := collect(t, func(emit EmitFunc) error { return s.SplitFile(f, int64(len(data)), emit) })
		sameExtents(t, fmt.Sprintf("file %d", i), got, want)
	}
}

func TestSplitFileSkipsHoles(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 8 << 30
	data := make([]byte, 1<<20)
	rand.New(rand.NewSource(5)).Read(data)
	if _, err := f.WriteAt(data, 4<<30+100); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(123, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	s := NewSplitter()
	got := collect(t, func(emit EmitFunc) error { return s.SplitFile(f, size, emit) })
	if off, _ := f.Seek(0, io.SeekCurrent); off != 123 {
		t.Fatalf("SplitFile left the file offset at %d, want 123", off)
	}
	var sum, dataBytes uint64
	for _, x := range got {
		sum += x.Length
		if !x.Zero {
			dataBytes += x.Length
		}
	}
	if sum != size || !got[0].Zero || got[0].Length != 4<<30 || !got[len(got)-1].Zero {
		t.Fatalf("extents %v", lengths(got))
	}
	if dataBytes != 1<<20+4096 {
		t.Fatalf("%d data bytes, want the blocks holding the 1 MiB", dataBytes)
	}
	if s.fileBytesRead > 2<<20 {
		t.Fatalf("read %d bytes of a file with 1 MiB of data", s.fileBytesRead)
	}
}

func TestSplitFileShort(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "short"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(make([]byte, 10))
	err = NewSplitter().SplitFile(f, 11, func(format.Extent, []byte) error { return nil })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error %v, want io.ErrUnexpectedEOF", err)
	}
}
