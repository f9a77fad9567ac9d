package registrytest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Kind is a way of misbehaving.
type Kind int

const (
	// Status answers Fault.Status without asking the registry.
	Status Kind = iota
	// Drop closes the connection without answering.
	Drop
	// DropMidBody sends the headers and half the body, then closes.
	DropMidBody
	// Corrupt flips a byte in the middle of the body.
	Corrupt
	// Truncate sends the first half of the body with a Content-Length that
	// matches it: a well-formed but short answer.
	Truncate
	// IgnoreRange forwards the request without its Range header.
	IgnoreRange
	// Modify replaces the body with Fault.Modify(body).
	Modify
	// Pass forwards the request untouched (a Count of them before a fault
	// installed after it).
	Pass
	// Stall never answers: the request hangs until the client goes away.
	Stall
	// StallBody sends the headers (with the full Content-Length) and half
	// the body, then holds the rest until the client goes away.
	StallBody
	// Trickle sends the headers, then the body one byte every
	// Fault.Interval (default 1s) until it is sent or the client goes away.
	Trickle
	// StallUpload never reads the request body and never answers: a client
	// sending a body larger than the socket buffers blocks on its write.
	StallUpload
)

// Fault makes matching requests misbehave.
type Fault struct {
	Method string // "" matches any
	Path   string // substring of the URL path; "" matches any
	Count  int    // how many matching requests misbehave; 0: all
	Kind   Kind
	Status int               // Status
	Header map[string]string // added to the answer (Retry-After, OCI-Chunk-Min-Length)
	Modify func([]byte) []byte
	// Interval is Trickle's pause between bytes.
	Interval time.Duration

	hits int
}

// Proxy forwards requests to a registry, applying faults.
type Proxy struct {
	Host string // 127.0.0.1:port
	URL  string

	upstream string
	client   *http.Client

	mu       sync.Mutex
	faults   []*Fault
	requests []string
	sent     int64 // body bytes of answers forwarded untouched
	bearer   *bearer

	done chan struct{} // closed when the test ends: stalls give up
}

// bearer is token authentication in front of the registry: requests need
// "Authorization: Bearer <token>", tokens come from /token for user:password.
type bearer struct {
	user, password string
	token          string
	scopes         []string
}

// RequireBearer makes the proxy demand bearer tokens, issued by its /token
// endpoint to user:password (the registry behind may have no auth at all).
func (p *Proxy) RequireBearer(user, password string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bearer = &bearer{user: user, password: password, token: "tok-" + strconv.Itoa(len(user)*7919+len(password))}
}

// TokenScopes returns the scopes tokens were asked for.
func (p *Proxy) TokenScopes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bearer == nil {
		return nil
	}
	return append([]string(nil), p.bearer.scopes...)
}

// authorize answers token requests and challenges unauthenticated ones; it
// reports whether the request may go on.
func (p *Proxy) authorize(w http.ResponseWriter, r *http.Request) bool {
	p.mu.Lock()
	b := p.bearer
	p.mu.Unlock()
	if b == nil {
		return true
	}
	if r.URL.Path == "/token" {
		u, pw, ok := r.BasicAuth()
		if !ok || u != b.user || pw != b.password {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
			return false
		}
		p.mu.Lock()
		b.scopes = append(b.scopes, r.URL.Query()["scope"]...)
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token":%q,"expires_in":300}`, b.token)
		return false
	}
	if r.Header.Get("Authorization") != "Bearer "+b.token {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="registrytest"`, p.URL+"/token"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return false
	}
	r.Header.Del("Authorization")
	return true
}

// NewProxy starts a plain HTTP proxy in front of the registry at upstream
// (a plain HTTP base URL); it stops when t ends.
func NewProxy(t testing.TB, upstream string) *Proxy {
	p := &Proxy{
		upstream: strings.TrimSuffix(upstream, "/"),
		client: &http.Client{
			Transport:     &http.Transport{DisableCompression: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	p.done = make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(p.done) }) // first: the stalled handlers return

	p.URL = srv.URL
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// Add installs f and returns it (see Hits).
func (p *Proxy) Add(f Fault) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	fp := &f
	p.faults = append(p.faults, fp)
	return fp
}

// Clear removes every fault.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}

// Hits returns how many requests f affected.
func (p *Proxy) Hits(f *Fault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return f.hits
}

// Requests returns "METHOD path" of every request seen so far.
func (p *Proxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// BytesSent returns how many body bytes the proxy forwarded to its clients
// (answers without a fault, or with IgnoreRange or Pass).
func (p *Proxy) BytesSent() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// match returns the fault for r, counting the hit.
func (p *Proxy) match(r *http.Request) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, r.Method+" "+r.URL.Path)
	for _, f := range p.faults {
		if f.Method != "" && f.Method != r.Method {
			continue
		}
		if f.Path != "" && !strings.Contains(r.URL.Path, f.Path) {
			continue
		}
		if f.Count > 0 && f.hits >= f.Count {
			continue
		}
		f.hits++
		return f
	}
	return nil
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if !p.authorize(w, r) {
		io.Copy(io.Discard, r.Body)
		return
	}
	f := p.match(r)
	if f != nil {
		switch f.Kind {
		case Status:
			io.Copy(io.Discard, r.Body)
			for k, v := range f.Header {
				w.Header().Set(k, v)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.Status)
			fmt.Fprintf(w, `{"errors":[{"code":"UNKNOWN","message":"injected %d"}]}`, f.Status)
			return
		case Drop:
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		case IgnoreRange:
			r.Header.Del("Range")
		case Stall, StallUpload:
			p.hold(r)
			return
		}
	}
	resp, err := p.forward(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	if f != nil {
		for k, v := range f.Header {
			w.Header().Set(k, v)
		}
	}
	if f == nil || f.Kind == IgnoreRange || f.Kind == Pass || r.Method == http.MethodHead {
		w.WriteHeader(resp.StatusCode)
		n, _ := io.Copy(w, resp.Body)
		p.mu.Lock()
		p.sent += n
		p.mu.Unlock()
		return
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	switch f.Kind {
	case DropMidBody:
		w.WriteHeader(resp.StatusCode)
		w.Write(body[:len(body)/2])
		flush(w)
		panic(http.ErrAbortHandler)
	case Corrupt:
		body = bytes.Clone(body)
		if len(body) > 0 {
			body[len(body)/2] ^= 0x55
		}
	case StallBody:
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(resp.StatusCode)
		w.Write(body[:len(body)/2])
		flush(w)
		p.hold(r)
		return
	case Trickle:
		p.trickle(w, r, resp.StatusCode, body, f.Interval)
		return
	case Truncate:
		body = body[:len(body)/2]
	case Modify:
		body = f.Modify(body)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

// hold waits until the client goes away or the test ends.
func (p *Proxy) hold(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-p.done:
	}
}

// trickle sends body one byte every interval after the headers.
func (p *Proxy) trickle(w http.ResponseWriter, r *http.Request, status int, body []byte, interval time.Duration) {
	if interval <= 0 {
		interval = time.Second
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	flush(w)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := range body {
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-p.done:
			return
		}
		if _, err := w.Write(body[i : i+1]); err != nil {
			return
		}
		flush(w)
	}
}

func flush(w http.ResponseWriter) {
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
}

// forward sends r to the registry, keeping the Host header so that the
// registry's Location headers point back at the proxy.
func (p *Proxy) forward(r *http.Request) (*http.Response, error) {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), r.Body)
	if err != nil {
		return nil, err
	}
	out.ContentLength = r.ContentLength
	if r.ContentLength == 0 {
		out.Body = http.NoBody
	}
	for k, vs := range r.Header {
		out.Header[k] = vs
	}
	out.Host = r.Host
	return p.client.Do(out)
}

// RotateToken makes the proxy issue a new bearer token and refuse the old
// one, as when a token expires: clients must ask /token again.
func (p *Proxy) RotateToken() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bearer != nil {
		p.bearer.token += "-rotated"
	}
}
