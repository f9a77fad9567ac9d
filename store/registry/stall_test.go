package registry_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store/registry"
	"github.com/oci2/oci2/store/registry/registrytest"
)

// stallRepo is a repository behind a proxy, with a short idle deadline and
// the warnings kept.
type stallRepo struct {
	proxy *registrytest.Proxy
	repo  *registry.Repo
	mu    sync.Mutex
	warns []string
}

func newStallRepo(t *testing.T, retries int) *stallRepo {
	srv := registrytest.StartInProcess(t)
	s := &stallRepo{proxy: registrytest.NewProxy(t, srv.URL())}
	s.repo = newRepo(t, s.proxy.Host, registry.Options{IdleTimeout: time.Second, Retries: retries,
		Warn: func(m string) { s.mu.Lock(); s.warns = append(s.warns, m); s.mu.Unlock() }})
	return s
}

// bounded is a context that ends long after any idle deadline of these
// tests: without the deadline the request would hang until then and the
// test would see context.DeadlineExceeded instead of ErrStalled.
func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkStalled fails t unless err is a StallError naming the proxy, the
// blob d and the phase.
func checkStalled(t *testing.T, err error, host string, d digest.Digest, phase string) {
	t.Helper()
	var se *registry.StallError
	if !errors.Is(err, registry.ErrStalled) || !errors.As(err, &se) {
		t.Fatalf("err = %v, want ErrStalled", err)
	}
	if se.Host != host || !strings.Contains(se.Path, d.String()) && !strings.Contains(se.Path, "/uploads/") || se.Phase != phase {
		t.Errorf("stall of %s %s while %q, want host %s, blob %s, phase %q", se.Host, se.Path, se.Phase, host, d, phase)
	}
	if !strings.Contains(err.Error(), host) {
		t.Errorf("message %q does not name the registry %s", err, host)
	}
}

func putRandom(t *testing.T, r *registry.Repo, n int) ([]byte, digest.Digest) {
	b := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(b)
	d := digest.FromBytes(b)
	if err := r.PutBlob(t.Context(), d, b); err != nil {
		t.Fatal(err)
	}
	return b, d
}

// TestStalledBodyRetried: an answer whose body stops after the headers is
// abandoned after the idle deadline and asked again.
func TestStalledBodyRetried(t *testing.T) {
	s := newStallRepo(t, 2)
	b, d := putRandom(t, s.repo, 256<<10)
	f := s.proxy.Add(registrytest.Fault{Method: "GET", Path: "/blobs/", Kind: registrytest.StallBody, Count: 1})
	got, err := s.repo.ReadBlob(bounded(t), d, 0)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("ReadBlob: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.warns[len(s.warns)-1]
	if s.proxy.Hits(f) != 1 || !strings.Contains(last, d.String()) || !strings.Contains(last, registry.ErrStalled.Error()) {
		t.Errorf("%d stalls, warnings %q: want one naming the blob and the stall", s.proxy.Hits(f), s.warns)
	}
}

// TestStalledBodyReported: a registry that always stalls fails the read,
// after the retries, with the registry and the blob named; so does a range
// read, and a body trickling one byte at a time.
func TestStalledBodyReported(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault registrytest.Fault
		read  func(context.Context, *registry.Repo, digest.Digest) error
	}{
		{"ReadBlob/StallBody", registrytest.Fault{Kind: registrytest.StallBody}, readBlob},
		{"ReadRange/StallBody", registrytest.Fault{Kind: registrytest.StallBody}, readRange},
		{"ReadBlob/Trickle", registrytest.Fault{Kind: registrytest.Trickle, Interval: 20 * time.Millisecond}, readBlob},
		{"ReadBlob/no answer", registrytest.Fault{Kind: registrytest.Stall}, readBlob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStallRepo(t, 1)
			_, d := putRandom(t, s.repo, 256<<10)
			tc.fault.Method, tc.fault.Path = "GET", "/blobs/"
			f := s.proxy.Add(tc.fault)
			err := tc.read(bounded(t), s.repo, d)
			phase := "reading the answer"
			if tc.fault.Kind == registrytest.Stall {
				phase = "waiting for the answer"
			}
			checkStalled(t, err, s.proxy.Host, d, phase)
			if s.proxy.Hits(f) != 2 {
				t.Errorf("%d requests stalled, want 2 (one retry)", s.proxy.Hits(f))
			}
		})
	}
}

func readBlob(ctx context.Context, r *registry.Repo, d digest.Digest) error {
	_, err := r.ReadBlob(ctx, d, 0)
	return err
}

func readRange(ctx context.Context, r *registry.Repo, d digest.Digest) error {
	_, err := r.ReadRange(ctx, d, 1000, 200<<10)
	return err
}

// TestStalledUpload: a registry that stops reading an upload's body fails
// the upload instead of blocking the writer forever.
func TestStalledUpload(t *testing.T) {
	s := newStallRepo(t, 1)
	b := make([]byte, 64<<20) // far more than loopback socket buffers hold
	rand.NewChaCha8([32]byte{2}).Read(b)
	d := digest.FromBytes(b)
	f := s.proxy.Add(registrytest.Fault{Method: "PUT", Path: "/uploads/", Kind: registrytest.StallUpload})
	err := s.repo.PutBlob(bounded(t), d, b)
	checkStalled(t, err, s.proxy.Host, d, "sending the request body")
	if s.proxy.Hits(f) != 2 {
		t.Errorf("%d uploads stalled, want 2 (one retry from a new session)", s.proxy.Hits(f))
	}
}

// TestStalledAuthTransport: the idle deadline also bounds a caller's own
// authenticated transport (the exporter's push=true goes through BuildKit's
// session transport, which has no timeout of its own).
func TestStalledAuthTransport(t *testing.T) {
	srv := registrytest.StartInProcess(t)
	proxy := registrytest.NewProxy(t, srv.URL())
	r := newRepo(t, proxy.Host, registry.Options{AuthTransport: &http.Transport{}, PlainHTTP: true, IdleTimeout: time.Second, Retries: -1})
	_, d := putRandom(t, r, 256<<10)
	proxy.Add(registrytest.Fault{Method: "GET", Path: "/blobs/", Kind: registrytest.StallBody})
	_, err := r.ReadBlob(bounded(t), d, 0)
	checkStalled(t, err, proxy.Host, d, "reading the answer")
}
