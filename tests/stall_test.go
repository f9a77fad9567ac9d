package tests

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oci2/oci2/store/registry/registrytest"
)

// TestRegistryStalled: a registry that sends an answer's headers and then
// holds its body, or stops reading an upload, fails `oci2 pull` and
// `oci2 push` after the idle deadline (flag or environment) and its
// retries, with the registry and the blob named; the pull names nothing.
// Without the deadline both commands hang until the test's own bound.
func TestRegistryStalled(t *testing.T) {
	p := newProxied(t, 41, 40)
	dir, proxy, a, ref := p.dir, p.proxy, p.a, p.ref
	bound := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		t.Cleanup(cancel)
		return ctx
	}
	upload := proxy.Add(registrytest.Fault{Method: "PUT", Path: "/blobs/uploads/", Kind: registrytest.StallUpload})
	env := append(append([]string(nil), a.env...), "OCI2_IDLE_TIMEOUT=1s")
	r := run(bound(), env, bin(t, "oci2"), "--store", a.dir, "push", "app:v1", ref)
	if r.Err == nil || proxy.Hits(upload) < 2 {
		t.Fatalf("push to a registry that stops reading: err %v after %d stalls\n%s", r.Err, proxy.Hits(upload), r.Stderr)
	}
	mentions(t, "push stderr", r.Stderr, "registry stalled", proxy.Host, "uploading blob sha256:")

	proxy.Clear()
	a.must("push", "app:v1", ref)
	stall := proxy.Add(registrytest.Fault{Method: "GET", Path: "/blobs/sha256:", Kind: registrytest.StallBody})
	b := regStore(t, filepath.Join(dir, "b"))
	r = run(bound(), b.env, bin(t, "oci2"), "--store", b.dir, "pull", "--idle-timeout", "1s", ref)
	if r.Err == nil || proxy.Hits(stall) < 2 {
		t.Fatalf("pull through a stalling registry: err %v after %d stalls\n%s", r.Err, proxy.Hits(stall), r.Stderr)
	}
	mentions(t, "pull stderr", r.Stderr, "registry stalled", proxy.Host, "/blobs/sha256:", "retrying")
	if out := b.must("images").Stdout; strings.Contains(out, "app") {
		t.Errorf("a stalled pull named the image:\n%s", out)
	}
}
