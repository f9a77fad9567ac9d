package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// ErrStalled is a registry that made no progress for Options.IdleTimeout:
// it did not read the request body, did not answer, or did not send the
// answer's body. It is retried like a dropped connection.
var ErrStalled = errors.New("registry stalled")

// minProgress is the progress that pushes the idle deadline back: a body
// trickling a byte every few seconds is as stalled as one that stopped.
const minProgress = 4 << 10

// StallError names the request that stalled and where.
type StallError struct {
	Host, Method, Path string
	Phase              string // "sending the request body", "waiting for the answer", "reading the answer"
	Idle               time.Duration
	Bytes              int64 // body bytes moved in that phase
}

func (e *StallError) Error() string {
	return fmt.Sprintf("registry %s: %s %s: %v: less than %d bytes in %v while %s (%d bytes moved)",
		e.Host, e.Method, e.Path, ErrStalled, minProgress, e.Idle, e.Phase, e.Bytes)
}

func (e *StallError) Unwrap() error { return ErrStalled }

// idleTransport bounds every wait of a round trip: the request body must be
// read, the answer's headers must come, and its body must progress, each at
// least minProgress bytes (headers: at all) every idle. Otherwise the
// request is cancelled with a StallError. It sits below authentication so
// that token and ping requests are bounded too.
type idleTransport struct {
	inner http.RoundTripper
	idle  time.Duration
}

func (t *idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watchdog{idle: t.idle, cancel: cancel,
		stall: StallError{Host: req.URL.Host, Method: req.Method, Path: req.URL.Path, Idle: t.idle}}
	out := req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		// The transport reads the body to EOF (checking its length) and
		// closes it once sent; either ends the sending phase.
		sent := sync.OnceFunc(func() { w.enter("waiting for the answer") })
		out.Body = &watchedBody{ReadCloser: req.Body, w: w, ctx: ctx, eof: sent, close: sent}
		w.start("sending the request body")
	} else {
		w.start("waiting for the answer")
	}
	resp, err := t.inner.RoundTrip(out)
	if err != nil {
		w.stop()
		if se := stallCause(ctx); se != nil {
			return nil, se
		}
		return nil, err
	}
	w.enter("reading the answer")
	resp.Body = &watchedBody{ReadCloser: resp.Body, w: w, ctx: ctx, eof: w.stop, close: w.stop}
	return resp, nil
}

// stallCause returns the StallError that cancelled ctx, or nil.
func stallCause(ctx context.Context) error {
	var se *StallError
	if errors.As(context.Cause(ctx), &se) {
		return se
	}
	return nil
}

// watchdog cancels a round trip when its deadline passes; progress of at
// least minProgress bytes pushes the deadline back.
type watchdog struct {
	idle   time.Duration
	cancel context.CancelCauseFunc

	mu    sync.Mutex
	t     *time.Timer
	moved int64 // bytes since the deadline was last pushed back
	stall StallError
	done  bool
}

func (w *watchdog) start(phase string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stall.Phase = phase
	w.t = time.AfterFunc(w.idle, w.fire)
}

// enter starts a new phase with a fresh deadline.
func (w *watchdog) enter(phase string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.stall.Phase, w.stall.Bytes, w.moved = phase, 0, 0
	w.t.Reset(w.idle)
}

func (w *watchdog) progress(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.moved += int64(n)
	w.stall.Bytes += int64(n)
	if w.moved >= minProgress && !w.done {
		w.moved = 0
		w.t.Reset(w.idle)
	}
}

func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	se := w.stall
	w.cancel(&se)
}

// stop ends the round trip: no deadline any more, and its context is
// released.
func (w *watchdog) stop() {
	w.mu.Lock()
	w.done = true
	w.t.Stop()
	w.mu.Unlock()
	w.cancel(context.Canceled)
}

// watchedBody reports progress to the watchdog and turns the cancellation
// it caused into its StallError.
type watchedBody struct {
	io.ReadCloser
	w     *watchdog
	ctx   context.Context
	eof   func()
	close func()
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.w.progress(n)
	if err == io.EOF {
		b.eof()
	}
	if err != nil && err != io.EOF {
		if se := stallCause(b.ctx); se != nil {
			return n, se
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	if b.close != nil {
		b.close()
	}
	return err
}
