package registry_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/registry"
	"github.com/oci2/oci2/store/registry/registrytest"
	"github.com/oci2/oci2/store/storetest"
)

var repoSeq atomic.Int64

// newRepo connects to a fresh repository of the registry at host.
func newRepo(t testing.TB, host string, o registry.Options) *registry.Repo {
	t.Helper()
	o.Push = true
	if o.MinBackoff == 0 {
		o.MinBackoff, o.MaxBackoff = time.Millisecond, 20*time.Millisecond
	}
	name := fmt.Sprintf("%s/test/r%d", host, repoSeq.Add(1))
	r, err := registry.New(t.Context(), name, o)
	if err != nil {
		t.Fatalf("registry.New(%s): %v", name, err)
	}
	return r
}

func TestConformance(t *testing.T) {
	srv := registrytest.StartInProcess(t)
	storetest.Run(t, func(t *testing.T) store.Store { return newRepo(t, srv.Host, registry.Options{}) })
}

func TestConformanceChunked(t *testing.T) {
	srv := registrytest.StartInProcess(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return newRepo(t, srv.Host, registry.Options{ChunkSize: 64 << 10})
	})
}

// TestChunkedUploadMinLength: chunks are at least the registry's
// OCI-Chunk-Min-Length.
func TestChunkedUploadMinLength(t *testing.T) {
	srv := registrytest.StartInProcess(t)
	proxy := registrytest.NewProxy(t, srv.URL())
	proxy.Add(registrytest.Fault{Method: "POST", Kind: registrytest.Pass, Header: map[string]string{"OCI-Chunk-Min-Length": "65536"}})
	r := newRepo(t, proxy.Host, registry.Options{ChunkSize: 1000})
	b := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320000 bytes: 5 chunks of 64 KiB
	d := digest.FromBytes(b)
	if err := r.PutBlob(t.Context(), d, b); err != nil {
		t.Fatal(err)
	}
	patches := 0
	for _, q := range proxy.Requests() {
		if strings.HasPrefix(q, "PATCH ") {
			patches++
		}
	}
	if patches != 5 {
		t.Errorf("%d PATCH requests, want 5: %v", patches, proxy.Requests())
	}
	if got, err := r.ReadBlob(t.Context(), d, 0); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("ReadBlob: %v", err)
	}
}

// TestMountRefused: a mount the registry cannot do answers with an upload
// session, which the upload then uses.
func TestMountRefused(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{}) // mounts: distribution
	ctx := t.Context()
	src := newRepo(t, srv.Host, registry.Options{})
	dst := newRepo(t, srv.Host, registry.Options{MountFrom: []string{src.Name()}})
	b := []byte("mount me")
	d := digest.FromBytes(b)
	mounted, session, err := dst.Mount(ctx, d, src.Name())
	if err != nil || mounted || session == "" {
		t.Fatalf("mount of a missing blob: mounted %v, session %q, %v", mounted, session, err)
	}
	if err := dst.UploadSession(ctx, session, d, int64(len(b)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}); err != nil {
		t.Fatal(err)
	}
	other := newRepo(t, srv.Host, registry.Options{})
	if mounted, _, err := other.Mount(ctx, d, dst.Path()); err != nil || !mounted {
		t.Fatalf("mount of a present blob: %v %v", mounted, err)
	}
	if ok, err := other.HasBlob(ctx, d); err != nil || !ok {
		t.Fatalf("mounted blob: %v %v", ok, err)
	}
}

// TestRangeIgnored: ranges stay right when the registry ignores Range.
func TestRangeIgnored(t *testing.T) {
	srv := registrytest.StartInProcess(t)
	proxy := registrytest.NewProxy(t, srv.URL())
	var warned []string
	r := newRepo(t, proxy.Host, registry.Options{Warn: func(s string) { warned = append(warned, s) }})
	b := bytes.Repeat([]byte("range"), 10000)
	d := digest.FromBytes(b)
	if err := r.PutBlob(t.Context(), d, b); err != nil {
		t.Fatal(err)
	}
	proxy.Add(registrytest.Fault{Method: "GET", Kind: registrytest.IgnoreRange})
	got, err := r.ReadRange(t.Context(), d, 12345, 1000)
	if err != nil || !bytes.Equal(got, b[12345:13345]) {
		t.Fatalf("ReadRange: %v", err)
	}
	if !r.IgnoresRange() || len(warned) != 1 || !strings.Contains(warned[0], "ignores Range") {
		t.Errorf("IgnoresRange %v, warnings %q", r.IgnoresRange(), warned)
	}
	if _, err := r.ReadRange(t.Context(), d, 49999, 2); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("range past the end: %v", err)
	}
}

// TestPlainHTTPRefused: plain HTTP only for loopback unless asked (ggcr
// falls back to http for private addresses on its own: the guard refuses).
func TestPlainHTTPRefused(t *testing.T) {
	if registry.IsLoopback("10.1.2.3:5000") || !registry.IsLoopback("127.0.0.1:5000") ||
		!registry.IsLoopback("localhost") || !registry.IsLoopback("[::1]:5000") {
		t.Fatal("IsLoopback")
	}
	for _, insecure := range []bool{false, true} {
		rec := &recordingTransport{}
		_, err := registry.New(t.Context(), "10.1.2.3:5000/xx", registry.Options{Insecure: insecure, Retries: -1, Transport: rec})
		if err == nil {
			t.Fatal("connected to nowhere")
		}
		sawHTTP := strings.Contains(strings.Join(rec.urls, " "), "http://")
		if sawHTTP != insecure {
			t.Errorf("insecure=%v: requests %v (%v)", insecure, rec.urls, err)
		}
		if !insecure && !errors.Is(err, registry.ErrPlainHTTP) {
			t.Errorf("error %v does not say plain HTTP was refused", err)
		}
	}
}

// recordingTransport fails every request, remembering its URL.
type recordingTransport struct{ urls []string }

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.urls = append(rt.urls, req.URL.String())
	return nil, errors.New("no network")
}
