package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
)

// testFrames returns n frames of the given stored sizes (cycled), their
// digests the sha256 of the bytes fakeFrame makes for them.
func testFrames(n int, sizes ...int) []format.Frame {
	fs := make([]format.Frame, n)
	for i := range fs {
		b := fakeBytes(i, sizes[i%len(sizes)])
		fs[i] = format.Frame{StoredSize: uint64(len(b)), Digest: format.Sum(b),
			Chunks: []format.ChunkRef{{ID: format.Sum([]byte{byte(i)}), Size: 1}}}
	}
	return fs
}

func fakeBytes(i, size int) []byte {
	return bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2+1)[:size]
}

// frameIndex recovers a test frame's position from its bytes.
func frameIndex(fs []format.Frame, f *format.Frame) int {
	for i := range fs {
		if fs[i].Digest == f.Digest {
			return i
		}
	}
	panic("unknown frame")
}

// serial is the pack WritePack makes without prefetching.
func serial(t *testing.T, fs []format.Frame) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := pack.WritePack(context.Background(), &buf, &format.PackIndex{Frames: fs}, fakeFrame(fs, nil)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeFrame returns each frame's bytes after hook (when set) returns nil.
func fakeFrame(fs []format.Frame, hook func(ctx context.Context, i int) error) frameFunc {
	return func(ctx context.Context, f *format.Frame) ([]byte, error) {
		i := frameIndex(fs, f)
		if hook != nil {
			if err := hook(ctx, i); err != nil {
				return nil, err
			}
		}
		b := fakeBytes(i, int(f.StoredSize))
		if format.Sum(b) != f.Digest {
			return nil, fmt.Errorf("frame %d: digest mismatch", i)
		}
		return b, nil
	}
}

// writePack streams fs through a prefetch of fp into w and closes it.
func writePack(ctx context.Context, fp *framePool, w *testWriter, fs []format.Frame) error {
	pf := fp.start(ctx, fs)
	err := pack.WritePack(ctx, w, &format.PackIndex{Frames: fs}, pf.Frame)
	pf.Close()
	return err
}

// testWriter collects the pack and calls onWrite (when set) with each write.
type testWriter struct {
	buf     bytes.Buffer
	onWrite func(n int)
}

func (w *testWriter) Write(b []byte) (int, error) {
	if w.onWrite != nil {
		w.onWrite(len(b))
	}
	return w.buf.Write(b)
}

// checkIdle fails unless fp holds no budget and no worker token.
func checkIdle(t *testing.T, fp *framePool) {
	t.Helper()
	if !fp.bytes.TryAcquire(fp.budget) {
		t.Error("budget not given back")
	} else {
		fp.bytes.Release(fp.budget)
	}
	if n := len(fp.cpu); n != 0 {
		t.Errorf("%d worker tokens held", n)
	}
}

// checkGoroutines waits for the goroutine count to come back to before.
// The wait is generous: a goroutine that has called wg.Done may still be
// unscheduled for a while on a loaded machine.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	for range 1000 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d goroutines, %d before", runtime.NumGoroutine(), before)
}

func TestPrefetchOrderAndWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	fs := testFrames(60, 1000, 3000, 17, 2500)
	want := serial(t, fs)
	var running, peak atomic.Int64
	fp := newFramePool(fakeFrame(fs, func(ctx context.Context, i int) error {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(time.Duration((i*7)%5) * time.Millisecond) // out-of-order completion
		return nil
	}), 3, 1<<20)
	w := &testWriter{}
	if err := writePack(context.Background(), fp, w, fs); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.buf.Bytes(), want) {
		t.Fatalf("pack differs from the serial one (%d vs %d bytes)", w.buf.Len(), len(want))
	}
	if p := peak.Load(); p > 3 {
		t.Errorf("%d frame calls at once, want at most 3", p)
	}
	checkIdle(t, fp)
	checkGoroutines(t, before)
}

// TestPrefetchBudget: while frame 0 is being written, frames are prepared
// ahead until the byte budget is used, and no further.
func TestPrefetchBudget(t *testing.T) {
	fs := testFrames(20, 1000)
	var started atomic.Int64
	third := make(chan struct{}) // closed when the third frame call starts
	fp := newFramePool(fakeFrame(fs, func(ctx context.Context, i int) error {
		if started.Add(1) == 3 {
			close(third)
		}
		return nil
	}), 8, 3500) // frames 0, 1 and 2 fit, not 3
	var (
		inflight, peak int64
		writes         int
	)
	w := &testWriter{onWrite: func(n int) {
		writes++
		if writes == 1 {
			<-third
			time.Sleep(50 * time.Millisecond) // room to overrun, if it would (can only miss a bug, never fail a good pool)
			if got := started.Load(); got != 3 {
				t.Errorf("while writing frame 0: %d frames started, want 3 (budget 3500, 1000 each)", got)
			}
		}
		// Frames started and not written yet, this one included.
		inflight = 1000*started.Load() - 1000*int64(writes-1)
		peak = max(peak, inflight)
	}}
	if err := writePack(context.Background(), fp, w, fs); err != nil {
		t.Fatal(err)
	}
	if peak > 3500 {
		t.Errorf("%d bytes of frames in flight, budget 3500", peak)
	}
	if !bytes.Equal(w.buf.Bytes(), serial(t, fs)) {
		t.Error("pack differs from the serial one")
	}
	checkIdle(t, fp)
}

// TestPrefetchLargeFrame: a frame over the whole budget goes alone.
func TestPrefetchLargeFrame(t *testing.T) {
	fs := testFrames(6, 100, 5000, 100)
	fp := newFramePool(fakeFrame(fs, nil), 2, 1000)
	w := &testWriter{}
	if err := writePack(context.Background(), fp, w, fs); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.buf.Bytes(), serial(t, fs)) {
		t.Error("pack differs from the serial one")
	}
	checkIdle(t, fp)
}

var errBroken = errors.New("broken frame")

// TestPrefetchError: the error of frame 7 is the one returned, after the
// frames before it were written, and frames far after it never start.
func TestPrefetchError(t *testing.T) {
	before := runtime.NumGoroutine()
	fs := testFrames(40, 1000)
	var maxStarted atomic.Int64
	fp := newFramePool(fakeFrame(fs, func(ctx context.Context, i int) error {
		for m := maxStarted.Load(); int64(i) > m && !maxStarted.CompareAndSwap(m, int64(i)); m = maxStarted.Load() {
		}
		switch {
		case i == 7:
			return errBroken
		case i > 7:
			time.Sleep(time.Millisecond)
		}
		return nil
	}), 4, 4000)
	w := &testWriter{}
	pf := fp.start(context.Background(), fs)
	err := pack.WritePack(context.Background(), w, &format.PackIndex{Frames: fs}, pf.Frame)
	time.Sleep(20 * time.Millisecond) // room to start more frames, if it would
	pf.Close()
	if !errors.Is(err, errBroken) {
		t.Fatalf("got %v, want the error of frame 7", err)
	}
	if want := fmt.Sprintf("frame 7 %s: broken frame", fs[7].Digest); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name frame 7 (%q)", err, want)
	}
	if want := serial(t, fs[:7]); !bytes.Equal(w.buf.Bytes(), want) {
		t.Errorf("wrote %d bytes before the error, want frames 0-6 (%d bytes)", w.buf.Len(), len(want))
	}
	// Budget 4000 of 1000-byte frames: frame 7 failed while at most frames
	// 8-10 were reserved besides it; none after them may start.
	if m := maxStarted.Load(); m > 10 {
		t.Errorf("frame %d started after frame 7 failed", m)
	}
	checkIdle(t, fp)
	checkGoroutines(t, before)
}

// TestPrefetchCancel: cancelling ctx stops the workers (blocked frame calls
// return) and Close leaves none running.
//
// The cancel comes once both workers are blocked in a frame call and the
// writer has written frames 0-2: cancelling any earlier races the writer
// (WritePack checks ctx before each frame, and Frame may pick ctx.Done over
// a ready result), so "frames 0-2 written" would hold only on a quiet
// machine.
func TestPrefetchCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	fs := testFrames(30, 1000)
	var active atomic.Int64
	blocked := make(chan struct{}, len(fs))
	fp := newFramePool(fakeFrame(fs, func(ctx context.Context, i int) error {
		active.Add(1)
		defer active.Add(-1)
		if i < 3 {
			return nil
		}
		blocked <- struct{}{}
		<-ctx.Done() // a frame that takes until cancelled
		return ctx.Err()
	}), 2, 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wrote3 := make(chan struct{})
	writes := 0
	w := &testWriter{onWrite: func(int) {
		if writes++; writes == 3 {
			close(wrote3)
		}
	}}
	go func() {
		<-blocked
		<-blocked
		<-wrote3
		cancel()
	}()
	err := writePack(ctx, fp, w, fs)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if n := active.Load(); n != 0 {
		t.Errorf("%d frame calls still running after Close", n)
	}
	if want := serial(t, fs[:3]); !bytes.Equal(w.buf.Bytes(), want) {
		t.Errorf("wrote %d bytes, want frames 0-2 (%d bytes)", w.buf.Len(), len(want))
	}
	checkIdle(t, fp)
	checkGoroutines(t, before)
}

// TestPrefetchWriterStops: a writer failing early (the upload gave up)
// leaves prepared frames behind; Close gives back their budget.
func TestPrefetchWriterStops(t *testing.T) {
	before := runtime.NumGoroutine()
	fs := testFrames(30, 1000)
	fp := newFramePool(fakeFrame(fs, nil), 2, 5000)
	pf := fp.start(context.Background(), fs)
	errWrite := errors.New("connection closed")
	err := pack.WritePack(context.Background(), writerFunc(func([]byte) (int, error) {
		time.Sleep(20 * time.Millisecond) // let the workers fill the budget
		return 0, errWrite
	}), &format.PackIndex{Frames: fs}, pf.Frame)
	pf.Close()
	if !errors.Is(err, errWrite) {
		t.Fatalf("got %v", err)
	}
	checkIdle(t, fp)
	checkGoroutines(t, before)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestPrefetchSharedPool: packs streamed at once share the workers and the
// budget without blocking one another.
func TestPrefetchSharedPool(t *testing.T) {
	before := runtime.NumGoroutine()
	packs := [][]format.Frame{testFrames(50, 900, 1200), testFrames(50, 2000), testFrames(50, 300, 4000), testFrames(7, 8000)}
	fp := newFramePool(func(ctx context.Context, f *format.Frame) ([]byte, error) {
		for _, fs := range packs {
			for i := range fs {
				if fs[i].Digest == f.Digest && fs[i].StoredSize == f.StoredSize {
					time.Sleep(100 * time.Microsecond)
					return fakeBytes(i, int(f.StoredSize)), nil
				}
			}
		}
		return nil, errors.New("unknown frame")
	}, 2, 5000)
	var want [][]byte
	for _, fs := range packs {
		want = append(want, serial(t, fs))
	}
	var wg sync.WaitGroup
	for k, fs := range packs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &testWriter{}
			if err := writePack(context.Background(), fp, w, fs); err != nil {
				t.Errorf("pack %d: %v", k, err)
				return
			}
			if !bytes.Equal(w.buf.Bytes(), want[k]) {
				t.Errorf("pack %d differs from the serial one", k)
			}
		}()
	}
	wg.Wait()
	checkIdle(t, fp)
	checkGoroutines(t, before)
}

// TestPrefetchOutOfOrder: asking for another frame than the next is an
// error, not a wrong pack.
func TestPrefetchOutOfOrder(t *testing.T) {
	fs := testFrames(5, 100)
	fp := newFramePool(fakeFrame(fs, nil), 2, 1000)
	pf := fp.start(context.Background(), fs)
	defer pf.Close()
	if _, err := pf.Frame(context.Background(), &fs[1]); err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Fatalf("got %v, want an out of order error", err)
	}
}
