package writer

import (
	"sync"
	"sync/atomic"
	"time"
)

// progressEvery throttles Progress callbacks.
const progressEvery = 100 * time.Millisecond

// reporter collects counters from many goroutines and calls the user's
// Progress callback at most every progressEvery (and at phase changes),
// never concurrently.
type reporter struct {
	fn func(Progress)

	entries, bytesRead, bytesTotal     atomic.Int64
	framesNew, framesReused, storedNew atomic.Int64

	mu    sync.Mutex // serializes fn; guards phase
	phase string
	stop  chan struct{}
	done  chan struct{}
}

func newReporter(fn func(Progress)) *reporter {
	r := &reporter{fn: fn}
	if fn != nil {
		r.stop, r.done = make(chan struct{}), make(chan struct{})
		go r.loop()
	}
	return r
}

func (r *reporter) loop() {
	defer close(r.done)
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.report()
		case <-r.stop:
			return
		}
	}
}

// setPhase reports the end of the previous phase and starts the next one.
func (r *reporter) setPhase(phase string) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	r.phase = phase
	r.mu.Unlock()
	r.report()
}

func (r *reporter) report() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fn(Progress{
		Phase:        r.phase,
		Entries:      r.entries.Load(),
		BytesRead:    r.bytesRead.Load(),
		BytesTotal:   r.bytesTotal.Load(),
		FramesNew:    r.framesNew.Load(),
		FramesReused: r.framesReused.Load(),
		StoredNew:    r.storedNew.Load(),
	})
}

// close sends a last report and stops the ticker.
func (r *reporter) close() {
	if r.fn == nil {
		return
	}
	close(r.stop)
	<-r.done
	r.report()
}
