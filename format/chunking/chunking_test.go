package chunking

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"testing"

	"github.com/restic/chunker"

	"github.com/oci2/oci2/format"
)

// refSplit is SPEC.md §3 written as plainly as possible: find the zero runs
// on the whole input, then chunk each segment with a new chunker.
func refSplit(t testing.TB, data []byte) []format.Extent {
	var out []format.Extent
	chunkSeg := func(seg []byte) {
		c := chunker.NewWithBoundaries(bytes.NewReader(seg), format.ChunkerPolynomial, format.ChunkMinSize, format.ChunkMaxSize)
		c.SetAverageBits(format.ChunkAverageBits)
		for {
			ch, err := c.Next(nil)
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, format.Extent{Length: uint64(ch.Length), Chunk: format.Sum(ch.Data)})
		}
	}
	zero := make([]byte, format.ZeroBlockSize)
	isZero := func(i int) bool {
		return i+format.ZeroBlockSize <= len(data) && bytes.Equal(data[i:i+format.ZeroBlockSize], zero)
	}
	segStart, i := 0, 0
	for i+format.ZeroBlockSize <= len(data) {
		if !isZero(i) {
			i += format.ZeroBlockSize
			continue
		}
		j := i
		for isZero(j) {
			j += format.ZeroBlockSize
		}
		if j-i >= format.ZeroRunMin {
			chunkSeg(data[segStart:i])
			out = append(out, format.Extent{Zero: true, Length: uint64(j - i)})
			segStart = j
		}
		i = j
	}
	chunkSeg(data[segStart:])
	return out
}

// collect runs split and checks what every emitted extent claims.
func collect(t testing.TB, split func(EmitFunc) error) []format.Extent {
	t.Helper()
	var out []format.Extent
	err := split(func(e format.Extent, data []byte) error {
		if e.Zero != (data == nil) {
			t.Fatalf("extent %+v with %d data bytes", e, len(data))
		}
		if !e.Zero && (uint64(len(data)) != e.Length || format.Sum(data) != e.Chunk) {
			t.Fatalf("data extent %+v does not match its bytes", e)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameExtents(t *testing.T, what string, got, want []format.Extent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d extents, want %d\n got %v\nwant %v", what, len(got), len(want), lengths(got), lengths(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: extent %d is %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

func lengths(xs []format.Extent) []string {
	var s []string
	for _, x := range xs {
		if x.Zero {
			s = append(s, fmt.Sprintf("z%d", x.Length))
		} else {
			s = append(s, fmt.Sprint(x.Length))
		}
	}
	return s
}

// piece kinds of generated files
const (
	pRandom = iota
	pZeros
	pPattern // low-entropy bytes: cuts after zero windows
)

type piece struct {
	kind int
	n    int
	hole bool // for files: leave zeros as a hole when aligned
}

// genPieces builds a file description mixing random data, zero runs around
// the 32 KiB threshold at aligned and unaligned offsets, and patterns.
func genPieces(rng *rand.Rand) []piece {
	var ps []piece
	for k := rng.Intn(12); k >= 0; k-- {
		p := piece{kind: rng.Intn(3)}
		switch p.kind {
		case pRandom:
			p.n = []int{1, 100, 4095, 4096, 5000, 20000, 70000, 300000}[rng.Intn(8)]
		case pZeros:
			p.n = []int{1, 4096, 28672, 32767, 32768, 36864, 40000, 65536, 1 << 20}[rng.Intn(9)]
			p.hole = rng.Intn(2) == 0
		case pPattern:
			p.n = rng.Intn(200000) + 1
		}
		ps = append(ps, p)
	}
	return ps
}

func render(rng *rand.Rand, ps []piece) []byte {
	var b []byte
	for _, p := range ps {
		switch p.kind {
		case pRandom:
			x := make([]byte, p.n)
			rng.Read(x)
			b = append(b, x...)
		case pZeros:
			b = append(b, make([]byte, p.n)...)
		case pPattern:
			for i := 0; i < p.n; i++ {
				if i%1000 < 100 {
					b = append(b, byte(i))
				} else {
					b = append(b, 0)
				}
			}
		}
	}
	return b
}

// chopReader returns short reads of random length.
type chopReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (c *chopReader) Read(p []byte) (int, error) {
	if n := c.rng.Intn(9000) + 1; len(p) > n {
		p = p[:n]
	}
	return c.r.Read(p)
}

func TestSplitMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	s := NewSplitter()
	zeroExtents := 0
	for i := 0; i < 150; i++ {
		data := render(rng, genPieces(rng))
		want := refSplit(t, data)
		for _, x := range want {
			if x.Zero {
				zeroExtents++
			}
		}
		got := collect(t, func(emit EmitFunc) error { return s.Split(bytes.NewReader(data), int64(len(data)), emit) })
		sameExtents(t, fmt.Sprintf("case %d (%d bytes)", i, len(data)), got, want)
		chopped := &chopReader{r: bytes.NewReader(data), rng: rng}
		got = collect(t, func(emit EmitFunc) error { return s.Split(chopped, int64(len(data)), emit) })
		sameExtents(t, fmt.Sprintf("case %d chopped", i), got, want)
	}
	if zeroExtents < 50 {
		t.Fatalf("only %d zero extents generated", zeroExtents)
	}
}

func TestSplitZeroRuns(t *testing.T) {
	rnd := func(n int) []byte {
		b := make([]byte, n)
		rand.New(rand.NewSource(int64(n))).Read(b)
		return b
	}
	z := func(n int) []byte { return make([]byte, n) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, c := range []struct {
		name string
		data []byte
		want []string
	}{
		{"empty", nil, nil},
		{"one byte", z(1), []string{"1"}},
		{"28K zeros stay data (cut at MinSize: zero fingerprint)", z(28672), []string{"16384", "12288"}},
		{"32K zeros", z(32768), []string{"z32768"}},
		{"32K+1 zeros: partial block is data", z(32769), []string{"z32768", "1"}},
		{"1M zeros", z(1 << 20), []string{"z1048576"}},
		{"unaligned zero run", cat(rnd(100), z(40000), rnd(100)), []string{"4096", "z32768", "3336"}},
		{"unaligned zero run too short", cat(rnd(100), z(32768), rnd(100)), []string{"16384", "16384", "200"}},
		{"data zero data", cat(rnd(8192), z(65536), rnd(5)), []string{"8192", "z65536", "5"}},
	} {
		s := NewSplitter()
		got := collect(t, func(emit EmitFunc) error { return s.Split(bytes.NewReader(c.data), int64(len(c.data)), emit) })
		if fmt.Sprint(lengths(got)) != fmt.Sprint(c.want) {
			t.Errorf("%s: extents %v, want %v", c.name, lengths(got), c.want)
		}
	}
}

func TestSplitShortInput(t *testing.T) {
	s := NewSplitter()
	for _, n := range []int{0, 100, 40000, 300000} {
		err := s.Split(bytes.NewReader(make([]byte, n)), int64(n)+1, func(format.Extent, []byte) error { return nil })
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%d of %d bytes: error %v, want io.ErrUnexpectedEOF", n, n+1, err)
		}
	}
	// The Splitter is usable after an error.
	data := make([]byte, 50000)
	rand.New(rand.NewSource(1)).Read(data)
	got := collect(t, func(emit EmitFunc) error { return s.Split(bytes.NewReader(data), 50000, emit) })
	sameExtents(t, "after error", got, refSplit(t, data))
}

func TestSplitReadsExactlySize(t *testing.T) {
	data := make([]byte, 100000)
	r := bytes.NewReader(data)
	s := NewSplitter()
	collect(t, func(emit EmitFunc) error { return s.Split(r, 70000, emit) })
	if r.Len() != 30000 {
		t.Fatalf("Split read %d bytes, want 70000", 100000-r.Len())
	}
}

func TestSplitEmitError(t *testing.T) {
	boom := errors.New("boom")
	data := make([]byte, 1<<20)
	rand.New(rand.NewSource(3)).Read(data)
	n := 0
	err := NewSplitter().Split(bytes.NewReader(data), int64(len(data)), func(format.Extent, []byte) error {
		n++
		if n == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n != 3 {
		t.Fatalf("error %v after %d extents, want boom after 3", err, n)
	}
}

func BenchmarkSplit(b *testing.B) {
	data := make([]byte, 32<<20)
	rand.New(rand.NewSource(1)).Read(data)
	s := NewSplitter()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Split(bytes.NewReader(data), int64(len(data)), func(format.Extent, []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
