package tests

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestBaseCacheAndStockExport builds on an OCIv2 base of the store with a
// stock exporter (type=oci): the result is an ordinary image whose history
// matches its layers, which `oci2 import` accepts (it checks every
// diff_id) and which runs under runc with the base's entrypoint. The base
// is unpacked once: a rebuild, and a rebuild after a daemon restart, hit
// BuildKit's cache.
func TestBaseCacheAndStockExport(t *testing.T) {
	d, _, p := startStoreBaseDaemon(t)
	ctx := dockerfileContext(t, "FROM t/base\nRUN id -u > uid && pwd > pwd && echo \"$K\" > k\n", map[string]string{})
	archive := filepath.Join(t.TempDir(), "img.tar")
	_, r := d.buildctl(t, nil, ctx, "type=oci,dest="+archive)
	if r.Err != nil {
		t.Fatalf("type=oci: %v\n%s", r.Err, clip(r.Stderr))
	}
	if !strings.Contains(r.Stderr, "oci2: unpacked") {
		t.Errorf("first build: no unpack shown under FROM:\n%s", clip(r.Stderr))
	}
	checkLayersHistory(t, archive)
	other := newStore(t, filepath.Join(t.TempDir(), "store"))
	other.must("import", "oci-archive:"+archive, "--tag", "stock/app")
	o := &bkDaemon{dir: d.dir, store: other.dir}
	if got := o.runImage(t, "stock/app"); got != "1000\n/srv\nfrom-base\n" {
		t.Errorf("stock export printed %q", got)
	}

	rebuild := func(when string) {
		t.Helper()
		_, r := d.buildctl(t, nil, ctx, "type=local,dest="+t.TempDir())
		if r.Err != nil {
			t.Fatalf("%s: %v\n%s", when, r.Err, clip(r.Stderr))
		}
		if strings.Contains(r.Stderr, "oci2: unpacking") || !strings.Contains(r.Stderr, "CACHED") {
			t.Errorf("%s: the base was unpacked again, or nothing was cached:\n%s", when, clip(r.Stderr))
		}
	}
	rebuild("rebuild")
	d.stop()
	d.start(t)
	rebuild("rebuild after a restart")
	if reqs := p.Requests(); len(reqs) != 0 {
		t.Errorf("registry requests %q, want none", reqs)
	}
}

// checkLayersHistory checks that the image in an OCI archive has as many
// non-empty history entries as layers and diff_ids, as stock exporters
// and runtimes require.
func checkLayersHistory(t *testing.T, archive string) {
	t.Helper()
	blobs := map[string][]byte{}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "index.json" || strings.HasPrefix(h.Name, "blobs/sha256/") && h.Size < 1<<20 {
			b, _ := io.ReadAll(tr)
			blobs[strings.TrimPrefix(h.Name, "blobs/sha256/")] = b
		}
	}
	var idx ocispec.Index
	json.Unmarshal(blobs["index.json"], &idx)
	if len(idx.Manifests) == 0 {
		t.Fatalf("archive has no manifest")
	}
	var m ocispec.Manifest
	json.Unmarshal(blobs[idx.Manifests[0].Digest.Encoded()], &m)
	var cfg ocispec.Image
	json.Unmarshal(blobs[m.Config.Digest.Encoded()], &cfg)
	nonEmpty := 0
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if len(m.Layers) != 2 || len(cfg.RootFS.DiffIDs) != 2 || nonEmpty != 2 {
		t.Errorf("layers %d, diff_ids %d, non-empty history %d: want 2 each (the base, the RUN)",
			len(m.Layers), len(cfg.RootFS.DiffIDs), nonEmpty)
	}
}

// TestBaseConcurrentBuilds runs two different builds on the same uncached
// OCIv2 base at once: the base is unpacked once, into one snapshot (both
// clients show the shared FROM step's progress, so the snapshots are
// counted in BuildKit's cache).
func TestBaseConcurrentBuilds(t *testing.T) {
	d, _, _ := startStoreBaseDaemon(t)
	ch := make(chan result, 2)
	for _, word := range []string{"one", "two"} {
		ctx := dockerfileContext(t, "FROM t/base\nRUN echo "+word+" > /srv/w\n", map[string]string{})
		out := t.TempDir()
		go func() {
			_, r := d.buildctl(t, nil, ctx, "type=local,dest="+out)
			ch <- r
		}()
	}
	for range 2 {
		if r := <-ch; r.Err != nil {
			t.Errorf("build: %v\n%s", r.Err, clip(r.Stderr))
		}
	}
	du := mustRun(t, nil, "buildctl", "--addr", d.addr, "du", "-v")
	if unpacks := strings.Count(du.Stdout, "oci2 base"); unpacks != 1 {
		t.Errorf("two concurrent builds unpacked the base %d times, want 1", unpacks)
	}
}
