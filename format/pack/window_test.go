package pack

import (
	"bytes"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/oci2/oci2/format"
)

// windowInputs are frames up to FrameMax: text, random bytes, a binary
// (this test's own executable), and repeats at every distance up to the
// window, around the 128 KiB block size and FrameMax.
func windowInputs(t *testing.T) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewSource(7))
	random := make([]byte, format.FrameMax)
	rng.Read(random)
	text := make([]byte, format.FrameMax)
	for i := range text {
		text[i] = "abcdefgh ij\n"[rng.Intn(12)]
	}
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	in := map[string][]byte{"empty": {}, "one byte": {'x'}}
	for _, n := range []int{100, 1024, 1025, 128<<10 - 1, 128 << 10, 128<<10 + 1, 300 << 10, format.FrameMax - 1, format.FrameMax} {
		in["text/"+strconv.Itoa(n)] = text[:n]
		in["random/"+strconv.Itoa(n)] = random[:n]
		for off := 0; off+n <= len(exe); off += max(n, len(exe)/4) {
			in["exe/"+strconv.Itoa(off)+"/"+strconv.Itoa(n)] = exe[off : off+n]
		}
	}
	for _, d := range []int{4 << 10, 200 << 10, 512 << 10, 900 << 10} {
		b := append(append([]byte{}, random[:d]...), random[:format.FrameMax-d]...)
		in["repeat at "+strconv.Itoa(d)] = b
	}
	return in
}

// TestSmallWindowSameBytes: the encoder with its window cut to FrameMax
// emits the pinned encoder's bytes for every frame up to FrameMax, so
// using it changes no digest (SPEC.md §5.2).
func TestSmallWindowSameBytes(t *testing.T) {
	pinned := encoders.get()
	defer encoders.put(pinned)
	small := smallEncoders.get()
	defer smallEncoders.put(small)
	for name, raw := range windowInputs(t) {
		// Twice: an encoder's earlier frames must not matter either.
		for range 2 {
			want := pinned.EncodeAll(raw, nil)
			if got := small.EncodeAll(raw, nil); !bytes.Equal(got, want) {
				t.Fatalf("%s (%d bytes): small-window encoder emits %d bytes, pinned one %d, or others",
					name, len(raw), len(got), len(want))
			}
		}
	}
	if encoderFor(format.FrameMax) != smallEncoders || encoderFor(format.FrameMax+1) != encoders {
		t.Error("frames up to FrameMax do not use the small-window encoders, or larger ones do")
	}
}

// TestEncodeFrameHistory: a fresh encoder of a FrameMax frame allocates
// a history sized by FrameMax, not by the pinned 8 MiB window (16 MiB).
func TestEncodeFrameHistory(t *testing.T) {
	raw := bytes.Repeat([]byte("oci2 history "), format.FrameMax/13)
	p := encoderFor(len(raw))
	e := p.pool.New().(*zstd.Encoder)
	defer p.put(e)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	e.EncodeAll(raw, nil)
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 6<<20 {
		t.Errorf("encoding a %d-byte frame allocated %d bytes, want at most 6 MiB", len(raw), n)
	}
}

// TestEncodersOutliveGC: the encoders of small frames are not built again
// after garbage collections (a sync.Pool drops them after two).
func TestEncodersOutliveGC(t *testing.T) {
	raw := bytes.Repeat([]byte("oci2 kept encoder "), 1000)
	EncodeFrame(raw)
	made := encodersMade.Load()
	for range 3 {
		runtime.GC()
		runtime.GC()
		EncodeFrame(raw)
	}
	if n := encodersMade.Load() - made; n != 0 {
		t.Errorf("%d encoders built again after garbage collections, want 0", n)
	}
}
