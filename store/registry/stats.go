package registry

import (
	"io"
	"net/http"
	"sync/atomic"
)

// Stats counts what crosses the wire: requests sent and the payload bytes of
// request and response bodies (headers are not counted). It is safe for
// concurrent use; one Stats may count several Repos.
type Stats struct {
	requests atomic.Int64
	sent     atomic.Int64
	received atomic.Int64
}

// Snapshot is a copy of the counters.
type Snapshot struct {
	Requests      int64 `json:"requests"`
	BytesSent     int64 `json:"bytes_sent"`
	BytesReceived int64 `json:"bytes_received"`
}

// Snapshot returns the counters now.
func (s *Stats) Snapshot() Snapshot {
	return Snapshot{Requests: s.requests.Load(), BytesSent: s.sent.Load(), BytesReceived: s.received.Load()}
}

// Sub returns the counts since an earlier snapshot.
func (a Snapshot) Sub(b Snapshot) Snapshot {
	return Snapshot{Requests: a.Requests - b.Requests, BytesSent: a.BytesSent - b.BytesSent,
		BytesReceived: a.BytesReceived - b.BytesReceived}
}

// CountingTransport counts every round trip of rt in s (authentication and
// token requests included).
func CountingTransport(rt http.RoundTripper, s *Stats) http.RoundTripper {
	if s == nil {
		return rt
	}
	return &countingTransport{inner: rt, s: s}
}

type countingTransport struct {
	inner http.RoundTripper
	s     *Stats
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.s.requests.Add(1)
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = &countingBody{ReadCloser: req.Body, n: &t.s.sent}
	}
	resp, err := t.inner.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.Body != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.s.received}
	}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
