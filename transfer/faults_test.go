package transfer_test

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/registry"
	"github.com/oci2/oci2/store/registry/registrytest"
	"github.com/oci2/oci2/transfer"
)

// faultEnv is a registry holding v1 and v2 behind a misbehaving proxy.
type faultEnv struct {
	srv   *registrytest.Server
	proxy *registrytest.Proxy
	v     *versions
}

func newFaultEnv(t *testing.T) *faultEnv {
	srv := registrytest.StartInProcess(t)
	e := &faultEnv{srv: srv, proxy: registrytest.NewProxy(t, srv.URL()), v: makeVersions(t)}
	for tag, d := range map[string]descT{"v1": e.v.v1, "v2": e.v.v2} {
		if _, err := transfer.Push(t.Context(), e.v.st, d, srv.Host+"/app:"+tag, transfer.PushOptions{Options: opts(nil)}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// pull pulls tag through the proxy into st.
func (e *faultEnv) pull(t *testing.T, st storeT, tag string, w *warnings) (*transfer.Result, error) {
	return transfer.Pull(t.Context(), st, e.proxy.Host+"/app:"+tag, transfer.PullOptions{Options: opts(w)})
}

// paths returns the URL path suffixes of the config, first pack index and
// first data pack of image d.
func (e *faultEnv) paths(t *testing.T, d descT) (config, packIndex, dataPack string) {
	m := manifestOf(t, e.v.st, d)
	for _, l := range m.Layers {
		if l.MediaType == format.MediaTypeDataPack {
			dataPack = "/blobs/" + l.Digest.String()
			packIndex = "/blobs/" + l.Annotations[format.AnnotationPackIndex]
			break
		}
	}
	return "/blobs/" + m.Config.Digest.String(), packIndex, dataPack
}

func manifestOf(t *testing.T, st storeT, idx descT) ocispec.Manifest {
	t.Helper()
	var index ocispec.Index
	b, err := st.ReadBlob(t.Context(), idx.Digest, 0)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &index)
	b, err = st.ReadBlob(t.Context(), index.Manifests[0].Digest, 0)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPullRetries(t *testing.T) {
	e := newFaultEnv(t)
	for _, tc := range []struct {
		name  string
		fault registrytest.Fault
		warn  string
	}{
		{"500", registrytest.Fault{Method: "GET", Path: "/blobs/", Count: 3, Kind: registrytest.Status, Status: 500}, "500 Internal Server Error"},
		{"503 manifests", registrytest.Fault{Method: "GET", Path: "/manifests/", Count: 2, Kind: registrytest.Status, Status: 503}, "503"},
		{"429", registrytest.Fault{Path: "/blobs/", Count: 2, Kind: registrytest.Status, Status: 429,
			Header: map[string]string{"Retry-After": "0"}}, "429 Too Many Requests"},
		{"dropped connection", registrytest.Fault{Method: "GET", Path: "/blobs/", Count: 2, Kind: registrytest.Drop}, "EOF"},
		{"dropped mid-body", registrytest.Fault{Method: "GET", Path: "/blobs/", Count: 2, Kind: registrytest.DropMidBody}, "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.proxy.Clear()
			f := e.proxy.Add(tc.fault)
			st := newStore(t)
			var w warnings
			res, err := e.pull(t, st, "v2", &w)
			if err != nil {
				t.Fatalf("pull: %v\nwarnings:\n%s", err, w.String())
			}
			if res.Digest != e.v.v2.Digest {
				t.Fatalf("pulled %s", res.Digest)
			}
			if e.proxy.Hits(f) != tc.fault.Count {
				t.Errorf("fault hit %d times, want %d", e.proxy.Hits(f), tc.fault.Count)
			}
			if !strings.Contains(w.String(), tc.warn) {
				t.Errorf("warnings do not mention %q:\n%s", tc.warn, w.String())
			}
			mustCheck(t, st)
		})
	}
}

func TestPushRetries(t *testing.T) {
	e := newFaultEnv(t)
	for _, tc := range []struct {
		name  string
		fault registrytest.Fault
	}{
		{"500 on PUT", registrytest.Fault{Method: "PUT", Path: "/blobs/uploads/", Count: 2, Kind: registrytest.Status, Status: 500}},
		{"429 on HEAD", registrytest.Fault{Method: "HEAD", Count: 3, Kind: registrytest.Status, Status: 429}},
		{"dropped PUT", registrytest.Fault{Method: "PUT", Path: "/blobs/uploads/", Count: 2, Kind: registrytest.Drop}},
		{"502 on manifest PUT", registrytest.Fault{Method: "PUT", Path: "/manifests/", Count: 1, Kind: registrytest.Status, Status: 502}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.proxy.Clear()
			f := e.proxy.Add(tc.fault)
			var w warnings
			repo := e.proxy.Host + "/push-" + strings.ReplaceAll(strings.ToLower(tc.name), " ", "-")
			if _, err := transfer.Push(t.Context(), e.v.st, e.v.v1, repo+":v1", transfer.PushOptions{Options: opts(&w)}); err != nil {
				t.Fatalf("push: %v\nwarnings:\n%s", err, w.String())
			}
			if e.proxy.Hits(f) != tc.fault.Count {
				t.Errorf("fault hit %d times, want %d", e.proxy.Hits(f), tc.fault.Count)
			}
			e.proxy.Clear()
			st := newStore(t)
			if res, err := transfer.Pull(t.Context(), st, repo+":v1", transfer.PullOptions{Options: opts(nil)}); err != nil || res.Digest != e.v.v1.Digest {
				t.Fatalf("pull back: %v %v", res, err)
			}
			mustCheck(t, st)
		})
	}
}

func TestRetriesRunOut(t *testing.T) {
	e := newFaultEnv(t)
	e.proxy.Add(registrytest.Fault{Method: "GET", Path: "/blobs/", Kind: registrytest.Status, Status: 503})
	st := newStore(t)
	_, err := e.pull(t, st, "v1", nil)
	var he *registry.HTTPError
	if !errors.As(err, &he) || he.Status != 503 || !strings.Contains(err.Error(), "after 5 attempts") {
		t.Fatalf("pull: %v; want a 503 after 5 attempts", err)
	}
	mustCheck(t, st)
}

// TestPullBadContent: wrong or short bytes are named, nothing is named in
// the store, and check passes.
func TestPullBadContent(t *testing.T) {
	e := newFaultEnv(t)
	config, packIndex, pack := e.paths(t, e.v.v1)
	for _, tc := range []struct {
		name string
		kind registrytest.Kind
		path string
		want error
		msg  string
	}{
		{"corrupt pack", registrytest.Corrupt, pack, store.ErrDigestMismatch, "stored bytes hash to"},
		{"truncated pack", registrytest.Truncate, pack, io.ErrUnexpectedEOF, "truncated answer"},
		{"corrupt config", registrytest.Corrupt, config, store.ErrDigestMismatch, "content hashes to"},
		{"corrupt pack index", registrytest.Corrupt, packIndex, store.ErrDigestMismatch, "content hashes to"},
		{"truncated pack index", registrytest.Truncate, packIndex, store.ErrSizeMismatch, "descriptor says"},
		{"truncated manifest", registrytest.Truncate, "/manifests/", store.ErrDigestMismatch, "hashes to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.proxy.Clear()
			e.proxy.Add(registrytest.Fault{Method: "GET", Path: tc.path, Kind: tc.kind})
			st := newStore(t)
			_, err := e.pull(t, st, "v1", nil)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("pull: %v; want %v mentioning %q", err, tc.want, tc.msg)
			}
			t.Logf("%s: %v", tc.name, err)
			if refs, _ := st.ListRefs(t.Context()); len(refs) != 0 {
				t.Fatalf("failed pull left refs %v", refs)
			}
			mustCheck(t, st)
		})
	}
}

// TestPullLyingManifest: manifests whose descriptors lie about sizes are
// refused, naming the blob.
func TestPullLyingManifest(t *testing.T) {
	e := newFaultEnv(t)
	m := manifestOf(t, e.v.st, e.v.v1)
	for _, tc := range []struct {
		name  string
		lie   func(m *ocispec.Manifest)
		match string
	}{
		{"pack size", func(m *ocispec.Manifest) { m.Layers[3].Size += 100 }, "its index"},
		{"pack index size", func(m *ocispec.Manifest) { m.Layers[2].Size-- }, "descriptor says"},
		{"config size", func(m *ocispec.Manifest) { m.Config.Size++ }, "descriptor says"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := m
			bad.Layers = append([]ocispec.Descriptor(nil), m.Layers...)
			tc.lie(&bad)
			tag := strings.ReplaceAll(tc.name, " ", "-")
			pushRaw(t, e.srv.Host+"/app", tag, &bad)
			st := newStore(t)
			_, err := transfer.Pull(t.Context(), st, e.srv.Host+"/app:"+tag, transfer.PullOptions{Options: opts(nil)})
			if err == nil || !strings.Contains(err.Error(), tc.match) {
				t.Fatalf("pull: %v; want an error mentioning %q", err, tc.match)
			}
			t.Logf("%s: %v", tc.name, err)
			mustCheck(t, st)
		})
	}
}

// pushRaw stores manifest m and an index over it under tag (registries
// check that blobs exist, not their sizes).
func pushRaw(t *testing.T, repo, tag string, m *ocispec.Manifest) {
	t.Helper()
	r, err := registry.New(t.Context(), repo, registry.Options{Push: true})
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := json.Marshal(m)
	md, err := r.PutManifest(t.Context(), digest.FromBytes(mb).String(), ocispec.MediaTypeImageManifest, mb)
	if err != nil {
		t.Fatal(err)
	}
	md.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	ib, _ := json.Marshal(ocispec.Index{Versioned: m.Versioned, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{md}})
	if _, err := r.PutManifest(t.Context(), tag, ocispec.MediaTypeImageIndex, ib); err != nil {
		t.Fatal(err)
	}
}

// TestPullRangeIgnored: a registry answering range requests with whole
// blobs is detected and named; the pull falls back to whole packs.
func TestPullRangeIgnored(t *testing.T) {
	e := newFaultEnv(t)
	st := newStore(t)
	if _, err := e.pull(t, st, "v1", nil); err != nil {
		t.Fatal(err)
	}
	f := e.proxy.Add(registrytest.Fault{Method: "GET", Path: "/blobs/", Kind: registrytest.IgnoreRange})
	var w warnings
	res, err := e.pull(t, st, "v2", &w)
	if err != nil {
		t.Fatal(err)
	}
	if e.proxy.Hits(f) == 0 || !strings.Contains(w.String(), "ignores Range") {
		t.Fatalf("no warning about Range (%d hits):\n%s", e.proxy.Hits(f), w.String())
	}
	t.Logf("pull v2 ignoring Range: %+v\n%s", res, w.String())
	mustCheck(t, st)
}
