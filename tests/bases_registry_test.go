package tests

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/buildkit/exporter"
	"github.com/oci2/oci2/store/registry/registrytest"
)

// pullLine is the summary the daemon shows for a pull of a base.
var pullLine = regexp.MustCompile(`oci2: (\d+) frames present, (\d+) rebuilt, (\d+) fetched \((\d+) bytes, (\d+) requests\)`)

// pullStats returns the fetched frames and bytes of the pull summaries in
// a build's output (-1 when there is none).
func pullStats(out string) (frames, bytes int64) {
	frames, bytes = -1, -1
	for _, m := range pullLine.FindAllStringSubmatch(out, -1) {
		f, _ := strconv.ParseInt(m[3], 10, 64)
		b, _ := strconv.ParseInt(m[4], 10, 64)
		frames, bytes = f, b
	}
	return frames, bytes
}

// TestBaseFromRegistry builds on OCIv2 images the daemon's store lacks,
// through a registry on 127.0.0.1 behind a recording proxy: by manifest
// digest (SPEC.md §6.3's gap, closed), by tag, then v2 of the image with
// v1 in the store (only v2's new frames are fetched); a rebuild asks the
// registry nothing, and --pull (image-resolve-mode=pull) only for
// manifests.
func TestBaseFromRegistry(t *testing.T) {
	requireRoot(t)
	requireTools(t, "runc", "buildctl", "registry")
	dir := workDir(t)
	srv := registrytest.Start(t, registrytest.Options{})
	p := registrytest.NewProxy(t, srv.URL())
	s := regStore(t, filepath.Join(dir, "src-store"))
	base := seedStoreBase(t, dir, s.dir)
	v2tree := filepath.Join(dir, "v2-tree")
	copyTree(t, base.tree, v2tree)
	big := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{2}).Read(big) // a fixed seed: a failure replays with the same bytes
	if err := os.WriteFile(filepath.Join(v2tree, "v2-data"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	s.create(v2tree, "t/base2", baseConfigFlags...)
	s.must("push", "t/base", srv.Host+"/oci2/base:v1")
	s.must("push", "t/base2", srv.Host+"/oci2/base:v2")
	v1 := partsOf(t, s.dir, "docker.io/t/base:latest")
	v2 := partsOf(t, s.dir, "docker.io/t/base2:latest")
	manifest := manifestOf(t, s, "t/base")

	d := startBuildkitdConfig(t, dir, fmt.Sprintf("[registry.%q]\n  http = true\n", p.Host))
	build := func(from string, extra ...string) (string, string) {
		t.Helper()
		ctx := dockerfileContext(t, "FROM "+from+"\nRUN cat /marker > /srv/m && id -u > /srv/uid\n", map[string]string{})
		out := filepath.Join(t.TempDir(), "out")
		_, r := d.buildctl(t, nil, ctx, "type=local,dest="+out, extra...)
		if r.Err != nil {
			t.Fatalf("FROM %s: %v\n%s", from, r.Err, clip(r.Stderr))
		}
		for f, want := range map[string]string{"srv/m": "base-marker\n", "srv/uid": "1000\n"} {
			if got, err := os.ReadFile(filepath.Join(out, f)); err != nil || string(got) != want {
				t.Errorf("FROM %s: /%s = %q, %v; want %q", from, f, got, err, want)
			}
		}
		return out, r.Stderr
	}

	t.Run("by-manifest-digest", func(t *testing.T) {
		_, log := build(p.Host + "/oci2/base@" + manifest)
		f, b := pullStats(log)
		if f != int64(len(v1.frames)) {
			t.Errorf("pull fetched %d frames (%d bytes), want all %d of v1", f, b, len(v1.frames))
		}
		t.Logf("FROM v1 by manifest digest, empty store: %d requests, %d frame bytes", len(p.Requests()), b)
	})
	t.Run("v1-by-tag", func(t *testing.T) {
		n := len(p.Requests())
		_, log := build(p.Host + "/oci2/base:v1")
		if f, _ := pullStats(log); f != 0 {
			t.Errorf("v1 by tag with v1 in the store: %d frames fetched, want 0", f)
		}
		if gets := blobGets(p.Requests()[n:]); len(gets) != 0 {
			t.Errorf("blob GETs %q, want none (the store has every blob)", gets)
		}
	})
	t.Run("v2-over-v1", func(t *testing.T) {
		n := len(p.Requests())
		out, log := build(p.Host + "/oci2/base:v2")
		if got, err := os.ReadFile(filepath.Join(out, "v2-data")); err != nil || len(got) != len(big) {
			t.Errorf("v2-data: %d bytes, %v", len(got), err)
		}
		nf, nb := newFrames(v1, v2)
		f, b := pullStats(log)
		t.Logf("FROM v2 with v1 in the store: %d requests, %d frames, %d bytes fetched; v2 has %d new frames (%d bytes) of %d",
			len(p.Requests())-n, f, b, nf, nb, len(v2.frames))
		if f < 0 || b > nb+nb/10 {
			t.Errorf("fetched %d bytes, want at most the new frames' %d + 10%%", b, nb)
		}
	})
	t.Run("rebuild-store-first", func(t *testing.T) {
		n := len(p.Requests())
		build(p.Host + "/oci2/base:v2")
		if reqs := p.Requests()[n:]; len(reqs) != 0 {
			t.Errorf("rebuild FROM a base the store holds: registry requests %q, want none", reqs)
		}
		// the pulled base is under the daemon's retention ([oci2] keep-*)
		found := false
		for _, m := range d.storeRefs(t).Manifests {
			if m.Annotations[ocispec.AnnotationRefName] == p.Host+"/oci2/base:v2" {
				found = m.Annotations[exporter.AnnotationExported] != ""
			}
		}
		if !found {
			t.Errorf("the pulled base %s/oci2/base:v2 is not under retention", p.Host)
		}
	})
	t.Run("pull-mode", func(t *testing.T) {
		n := len(p.Requests())
		build(p.Host+"/oci2/base:v2", "--opt", "image-resolve-mode=pull")
		reqs := p.Requests()[n:]
		if len(reqs) == 0 {
			t.Errorf("--pull asked the registry nothing")
		}
		if gets := blobGets(reqs); len(gets) != 0 {
			t.Errorf("--pull of an unchanged base: blob GETs %q, want none", gets)
		}
	})
}
