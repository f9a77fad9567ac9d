package transfer

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/oci2/oci2/format"
)

// frameFunc returns the stored bytes of a frame (pack.WritePack's argument).
type frameFunc = func(ctx context.Context, f *format.Frame) ([]byte, error)

// defaultPrefetchBytes bounds the stored bytes of frames prepared but not
// yet written, over every pack a push streams at once.
const defaultPrefetchBytes = 64 << 20

// framePool prepares frames ahead of the packs being written: at most
// workers frame calls run at once and at most budget stored bytes are held
// by frames prepared and not yet written, whatever the number of packs
// streaming. Regenerating a virtual frame (decode its chunks, re-encode them)
// is CPU-bound, so a pack is written while the next frames are encoded.
type framePool struct {
	frame  frameFunc
	cpu    chan struct{}       // a token per running frame call
	bytes  *semaphore.Weighted // stored bytes in flight
	budget int64
}

// newFramePool returns a pool calling frame; workers <= 0 means GOMAXPROCS,
// budget <= 0 the default.
func newFramePool(frame frameFunc, workers int, budget int64) *framePool {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if budget <= 0 {
		budget = defaultPrefetchBytes
	}
	return &framePool{frame: frame, cpu: make(chan struct{}, workers), bytes: semaphore.NewWeighted(budget), budget: budget}
}

// weight is what frame f holds of the budget: its stored size, clamped so
// that a frame larger than the budget still goes (alone).
func (fp *framePool) weight(f *format.Frame) int64 {
	return max(1, min(int64(f.StoredSize), fp.budget))
}

// frameResult is one prepared frame.
type frameResult struct {
	b   []byte
	err error
}

// prefetch streams the frames of one pack index through the pool.
// Frame must be called for frames[0], frames[1], ... in order (as
// pack.WritePack does); Close stops the workers and waits for them, and
// must be called once the writer is done, whatever happened.
//
// A frame's bytes are returned exactly as the pool's frame func returned
// them (its verification is unchanged). The first error, by frame order, is
// the one returned; no frame after a failed one is started.
type prefetch struct {
	fp      *framePool
	frames  []format.Frame
	results []chan frameResult // one per frame, buffered

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	failed int // index of the first failed frame, len(frames) if none

	next int   // the frame Frame returns next
	held int64 // budget held by the frame last returned (being written)
}

// start begins preparing frames (in order, bounded by the pool) until
// Close or ctx ends.
func (fp *framePool) start(ctx context.Context, frames []format.Frame) *prefetch {
	pf := &prefetch{fp: fp, frames: frames, results: make([]chan frameResult, len(frames)), failed: len(frames)}
	for i := range pf.results {
		pf.results[i] = make(chan frameResult, 1)
	}
	pf.ctx, pf.cancel = context.WithCancel(ctx)
	pf.wg.Add(1)
	go pf.dispatch()
	return pf
}

// dispatch reserves budget for frames in order and starts a call for each
// once a worker token is free.
func (pf *prefetch) dispatch() {
	defer pf.wg.Done()
	for i := range pf.frames {
		if pf.stopped(i) {
			return
		}
		w := pf.fp.weight(&pf.frames[i])
		if err := pf.fp.bytes.Acquire(pf.ctx, w); err != nil {
			return
		}
		if pf.stopped(i) { // an earlier frame failed while we waited
			pf.fp.bytes.Release(w)
			return
		}
		select {
		case pf.fp.cpu <- struct{}{}:
		case <-pf.ctx.Done():
			pf.fp.bytes.Release(w)
			return
		}
		pf.wg.Add(1)
		go pf.run(i, w)
	}
}

// run prepares frame i, holding a worker token and w bytes of budget; the
// budget goes back when Frame hands the frame on, or here when it never
// will.
func (pf *prefetch) run(i int, w int64) {
	defer pf.wg.Done()
	b, err := pf.fp.frame(pf.ctx, &pf.frames[i])
	<-pf.fp.cpu
	if err != nil {
		pf.mu.Lock()
		pf.failed = min(pf.failed, i)
		pf.mu.Unlock()
	}
	pf.results[i] <- frameResult{b, err}
}

func (pf *prefetch) stopped(i int) bool {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	return i > pf.failed
}

// Frame returns the next frame's stored bytes; f must be that frame.
func (pf *prefetch) Frame(ctx context.Context, f *format.Frame) ([]byte, error) {
	pf.release()
	i := pf.next
	if i >= len(pf.frames) || f.Digest != pf.frames[i].Digest {
		return nil, fmt.Errorf("frame %s asked out of order (prefetching frame %d of %d)", f.Digest, i, len(pf.frames))
	}
	var r frameResult
	select {
	case r = <-pf.results[i]:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-pf.ctx.Done():
		return nil, pf.ctx.Err()
	}
	pf.next++
	if r.err != nil {
		pf.fp.bytes.Release(pf.fp.weight(&pf.frames[i]))
		return nil, r.err
	}
	pf.held = pf.fp.weight(&pf.frames[i])
	return r.b, nil
}

// release returns the budget of the frame last handed on: the writer is
// done with its bytes once it asks for the next one (or closes).
func (pf *prefetch) release() {
	if pf.held > 0 {
		pf.fp.bytes.Release(pf.held)
		pf.held = 0
	}
}

// Close stops preparing frames, waits for every goroutine of pf and gives
// back the budget of frames prepared but not returned.
func (pf *prefetch) Close() {
	pf.cancel()
	pf.wg.Wait()
	pf.release()
	for i := pf.next; i < len(pf.frames); i++ {
		select {
		case <-pf.results[i]:
			pf.fp.bytes.Release(pf.fp.weight(&pf.frames[i]))
		default:
		}
	}
	pf.next = len(pf.frames)
}
