package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// netsim is a reverse proxy in front of the registry that adds a round
// trip time to every request and limits the bandwidth of answers (this
// kernel has no netem). It models neither TCP slow start nor loss: it
// compares modes, it does not predict WAN times. It counts what passes,
// so that clients which report nothing (ctr) are measured alike.
type netsim struct {
	Host     string
	srv      *http.Server
	requests atomic.Int64
	bytes    atomic.Int64 // of answer bodies
	// trace, when set, gets one line per request once it is answered.
	trace atomic.Pointer[func(string)]
}

// Trace sends a line per request (start, duration, method, path, range)
// to f from now on; nil stops.
func (n *netsim) Trace(f func(string)) {
	if f == nil {
		n.trace.Store(nil)
		return
	}
	n.trace.Store(&f)
}

// Counts returns the requests and answer bytes since the last Counts.
func (n *netsim) Counts() (requests, bytes int64) {
	return n.requests.Swap(0), n.bytes.Swap(0)
}

// startNetsim proxies 127.0.0.1:<free port> to upstream (host:port) with
// rtt per request and at most rate bytes a second of answer bodies.
func startNetsim(upstream string, rtt time.Duration, rate int64) (*netsim, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &netsim{Host: l.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upstream})
	rp.ModifyResponse = func(r *http.Response) error {
		r.Body = &rateLimited{rc: r.Body, rate: rate, start: time.Now(), count: &n.bytes}
		return nil
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.requests.Add(1)
		if f := n.trace.Load(); f != nil {
			t0 := time.Now()
			defer func() {
				(*f)(fmt.Sprintf("%s +%v %s %s %s", t0.Format("15:04:05.000"), time.Since(t0).Round(time.Millisecond),
					r.Method, r.URL.Path, r.Header.Get("Range")))
			}()
		}
		if rtt > 0 {
			select {
			case <-time.After(rtt):
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	})
	n.srv = &http.Server{Handler: h}
	go n.srv.Serve(l)
	return n, nil
}

func (n *netsim) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.srv.Shutdown(ctx)
}

// rateLimited delays reads so that the body flows at most at rate bytes a
// second (0: unlimited).
type rateLimited struct {
	rc    io.ReadCloser
	rate  int64
	start time.Time
	n     int64
	count *atomic.Int64 // the proxy's total
}

func (r *rateLimited) Read(p []byte) (int, error) {
	if r.rate > 0 && len(p) > 64<<10 {
		p = p[:64<<10]
	}
	n, err := r.rc.Read(p)
	r.n += int64(n)
	r.count.Add(int64(n))
	if r.rate > 0 {
		due := r.start.Add(time.Duration(float64(r.n) / float64(r.rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
	}
	return n, err
}

func (r *rateLimited) Close() error { return r.rc.Close() }
