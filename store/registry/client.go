package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// client sends requests to one registry: bounded parallelism, retries with
// backoff, error answers turned into HTTPErrors.
type client struct {
	host string // for messages
	hc   *http.Client
	sem  chan struct{}
	o    Options
}

func newClient(host string, rt http.RoundTripper, o Options) *client {
	return &client{
		host: host,
		hc:   &http.Client{Transport: rt},
		sem:  make(chan struct{}, o.Jobs),
		o:    o,
	}
}

// call is one request, re-creatable for retries.
type call struct {
	method string
	url    string
	header http.Header
	// body opens the request body, once per attempt; nil: no body.
	body   func() (io.ReadCloser, error)
	length int64 // body length, -1 unknown
	want   []int // success statuses
	// once disables retries (a request whose failure leaves server state
	// the caller must start over from, an upload PUT for instance).
	once bool
}

// do sends k until it succeeds, fails for good or retries run out. The
// response's status is one of k.want; its body must be closed (that frees
// the request slot).
func (c *client) do(ctx context.Context, k call) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, wait, err := c.attempt(ctx, k)
		if err == nil {
			return resp, nil
		}
		var he *HTTPError
		retry := false
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.As(err, &he):
			he.Attempts = attempt + 1
			retry = he.retryable()
		case errors.Is(err, errBody):
			return nil, errors.Unwrap(err)
		default:
			retry = retryableNetError(err)
			if attempt > 0 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
		}
		if !retry || k.once {
			return nil, err
		}
		if attempt >= c.o.Retries {
			return nil, &exhaustedError{err}
		}
		c.o.Warn(fmt.Sprintf("%v; retrying", err))
		if err := sleep(ctx, backoff(c.o, attempt, wait)); err != nil {
			return nil, err
		}
	}
}

// exhaustedError is a request do retried as often as Options.Retries
// allows: a caller retrying a larger operation (a blob read that failed
// mid-body, an upload session) must not retry it again, or the waits would
// multiply (see retryAgain).
type exhaustedError struct{ err error }

func (e *exhaustedError) Error() string { return e.err.Error() }
func (e *exhaustedError) Unwrap() error { return e.err }

// retryAgain reports whether an operation that failed with err may be
// tried again: a dropped connection or a stall that do did not already
// retry to the end.
func retryAgain(err error) bool {
	var ex *exhaustedError
	return retryableNetError(err) && !errors.As(err, &ex)
}

// errBody marks a failure to produce the request body (not retried).
var errBody = errors.New("request body")

type bodyError struct{ err error }

func (e *bodyError) Error() string   { return e.err.Error() }
func (e *bodyError) Unwrap() error   { return e.err }
func (e *bodyError) Is(t error) bool { return t == errBody }

// attempt sends k once. wait is the Retry-After the registry asked for.
func (c *client) attempt(ctx context.Context, k call) (*http.Response, time.Duration, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	release := sync.OnceFunc(func() { <-c.sem })
	var body *trackedBody
	var rb io.ReadCloser = http.NoBody
	if k.body != nil {
		b, err := k.body()
		if err != nil {
			release()
			return nil, 0, &bodyError{err}
		}
		body = &trackedBody{ReadCloser: b}
		rb = body
	}
	req, err := http.NewRequestWithContext(ctx, k.method, k.url, rb)
	if err != nil {
		rb.Close()
		release()
		return nil, 0, err
	}
	for key, vs := range k.header {
		req.Header[key] = vs
	}
	if k.body != nil {
		req.ContentLength = k.length
		if k.length == 0 {
			req.Body = http.NoBody
			body.Close()
		}
	}
	resp, err := c.hc.Do(req)
	if body != nil && body.err != nil {
		// The body failed (a local read error or verification): that is
		// the error, whatever the transport made of it.
		if resp != nil {
			resp.Body.Close()
		}
		release()
		return nil, 0, &bodyError{body.err}
	}
	if err != nil {
		release()
		return nil, 0, err
	}
	if !slices.Contains(k.want, resp.StatusCode) {
		he := newHTTPError(c.host, req, resp)
		wait := retryAfter(resp)
		resp.Body.Close()
		release()
		return nil, wait, he
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, 0, nil
}

// trackedBody remembers the first error of the body reader.
type trackedBody struct {
	io.ReadCloser
	err error
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

// retryAfter parses a Retry-After header in seconds (dates are ignored).
func retryAfter(resp *http.Response) time.Duration {
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
	}
	return 0
}

// backoff is the wait before retry number attempt+1: exponential from
// MinBackoff with jitter, at least what the registry asked, capped.
func backoff(o Options, attempt int, asked time.Duration) time.Duration {
	d := o.MinBackoff << min(attempt, 16)
	d += time.Duration(rand.Int64N(int64(d)/2 + 1))
	d = max(d, asked)
	return min(d, o.MaxBackoff)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
