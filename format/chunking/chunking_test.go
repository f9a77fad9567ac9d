package chunking

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
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

// goldenChunks pins the chunk boundaries and IDs of 4 MiB of seeded random
// data (rand.NewSource(1)) followed by 64 KiB of zeros and 1000 more bytes.
// A change here changes every image digest.
var goldenChunks = []string{
	"125635 e9b8c9cab2c2f170",
	"170827 1a8d6de942995679",
	"222260 167b9c797626a9d7",
	"252183 0025166c81fc270a",
	"45613 27a4d86bf3ed0c40",
	"138018 9ec56f37a8ee838f",
	"25934 6b1319c9d958fade",
	"82314 499b40d0ba48fa79",
	"171448 dcd8f31f137d122f",
	"135488 d733304e9747e16f",
	"81810 233e05accb12983a",
	"155143 13783c5356fac919",
	"21520 a31129e7687cd13d",
	"97451 04eef712da01a59b",
	"64166 e01fb08b1926a595",
	"19577 5b6f6994fcf63f92",
	"83801 f17ca4e4d7fc32df",
	"43718 08e86ca43ee8a300",
	"34180 9608d31c42205539",
	"152141 219849b05a0ba754",
	"161183 d26f0eab2e0ee122",
	"56121 dd920baa2f893170",
	"58643 82cfb16351b8dab9",
	"199680 ccdec7693b2e9c74",
	"156680 9d25b9773625d004",
	"20712 2761def9b6ef88e4",
	"135413 85183f7d57334b45",
	"20789 a6f305b0243aa806",
	"111506 5f6816c967438976",
	"25778 2c135dec94204dae",
	"170469 b0028959c9e3106c",
	"127630 e4345e631dc89dc1",
	"262144 97333c3f956265fe",
	"19064 5612a2c2ea2d4e2a",
	"122882 0965e8a5132fdda5",
	"63247 436e865543e34841",
	"32437 0b5579983a5f5e9c",
	"32038 a186daa033295365",
	"118398 2d75bafe14a2d19e",
	"19667 b59ec15f1865d425",
	"21247 9820575b4f175dc2",
	"51224 6380e49f74e12ca5",
	"82615 d5e8f501ee29efe9",
	"1510 9445555bddf33252",
	"zero 65536",
	"1000 71999826749a9c24",
}

func goldenInput() []byte {
	data := make([]byte, 4<<20+64<<10+1000)
	rng := rand.New(rand.NewSource(1))
	rng.Read(data[:4<<20])
	rng.Read(data[4<<20+64<<10:])
	return data
}

func TestGoldenChunks(t *testing.T) {
	data := goldenInput()
	got := collect(t, func(emit EmitFunc) error { return NewSplitter().Split(bytes.NewReader(data), int64(len(data)), emit) })
	var lines []string
	for _, x := range got {
		if x.Zero {
			lines = append(lines, fmt.Sprintf("zero %d", x.Length))
		} else {
			lines = append(lines, fmt.Sprintf("%d %s", x.Length, hex.EncodeToString(x.Chunk[:8])))
		}
	}
	if fmt.Sprintf("%q", lines) != fmt.Sprintf("%q", goldenChunks) {
		for _, l := range lines {
			fmt.Printf("\t%q,\n", l)
		}
		t.Fatalf("chunks differ from the golden table")
	}
}

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
