package tests

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/store/registry/registrytest"
)

// TestHostileTreesPullCopy: an image whose trees break SPEC.md §4.2/§4.3,
// served by a real registry, is neither named by `oci2 pull` nor copied by
// `oci2 copy`, and `oci2 tag` by digest does not name its stored blobs.
func TestHostileTreesPullCopy(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{})
	dir := workDir(t)
	b := regStore(t, filepath.Join(dir, "b"))
	for _, h := range hostileTrees() {
		t.Run(h.name, func(t *testing.T) {
			idx := pushHostile(t, srv.Host, "hostile/"+h.name, "v1", h.root)
			ref := srv.Host + "/hostile/" + h.name + ":v1"
			r := b.run("pull", ref)
			if r.Err == nil {
				t.Fatalf("pull of %s succeeded:\n%s", h.name, r.Stderr)
			}
			mentions(t, "pull stderr", r.Stderr, "invalid image", h.want)
			r = b.run("tag", idx.String(), "hostile-"+h.name+":v1")
			if r.Err == nil {
				t.Errorf("tag of the pulled blobs by digest succeeded")
			}
			mentions(t, "tag stderr", r.Stderr, h.want)
			r = b.run("copy", ref, srv.Host+"/copied/"+h.name+":v1")
			if r.Err == nil {
				t.Errorf("copy of %s succeeded:\n%s", h.name, r.Stderr)
			}
			mentions(t, "copy stderr", r.Stderr, "refusing to copy an invalid image", h.want)
			if remoteHasTag(t, srv.Host, "copied/"+h.name, "v1") {
				t.Errorf("copy tagged the invalid image")
			}
		})
	}
	if out := b.must("images").Stdout; strings.Contains(out, "hostile") {
		t.Errorf("a refused pull named an image:\n%s", out)
	}
	b.must("check")
}

// TestHostileTreesNamed: a store that names images with invalid trees (as
// another tool could write them), or a blob that is missing, still lists
// every image in `images` and `du`, marking the broken ones and exiting 3;
// `check` without --read-data reports each; `push` refuses to send them.
func TestHostileTreesNamed(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{})
	dir := workDir(t)
	src := filepath.Join(dir, "src")
	writeSmallTree(t, src)
	a := regStore(t, filepath.Join(dir, "a"))
	a.create(src, "good:v1")
	trees := hostileTrees()
	for _, h := range trees {
		nameHostile(t, a.dir, "docker.io/library/hostile-"+h.name+":v1", h.root)
	}
	ghost := addGhostRef(t, a.dir, "docker.io/library/ghost:v1")

	r := a.run("images")
	if exitCode(r.Err) != 3 {
		t.Errorf("images: exit %d, want 3\n%s", exitCode(r.Err), r.Stderr)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(r.Stdout, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	if l := lines["good:v1"]; l == "" || strings.Contains(l, "BROKEN") {
		t.Errorf("images: good:v1 row %q\n%s", l, r.Stdout)
	}
	for _, h := range trees {
		if l := lines["hostile-"+h.name+":v1"]; !strings.HasSuffix(l, "BROKEN") {
			t.Errorf("images: hostile-%s row %q, want BROKEN\n%s", h.name, l, r.Stdout)
		}
		mentions(t, "images stderr", r.Stderr, "hostile-"+h.name+":v1 is broken")
	}
	mentions(t, "images stderr", r.Stderr, "ghost:v1 is broken", ghost.String())
	if !strings.HasSuffix(lines["ghost:v1"], "BROKEN") {
		t.Errorf("images: ghost row %q", lines["ghost:v1"])
	}

	var rows []struct {
		Name         string `json:"name"`
		LogicalBytes int64  `json:"logical_bytes"`
		Problem      string `json:"problem"`
	}
	r = a.run("images", "--json")
	if err := json.Unmarshal([]byte(r.Stdout), &rows); err != nil || len(rows) != len(trees)+2 {
		t.Fatalf("images --json: %v, %d rows\n%s", err, len(rows), r.Stdout)
	}
	for _, row := range rows {
		good := row.Name == "docker.io/library/good:v1"
		if good != (row.Problem == "") || good && row.LogicalBytes == 0 {
			t.Errorf("images --json row %+v", row)
		}
	}

	r = a.run("du")
	if exitCode(r.Err) != 3 || strings.Count(r.Stdout, "BROKEN") != len(trees)+1 || !strings.Contains(r.Stdout, "good:v1") {
		t.Errorf("du: exit %d, want 3 and %d BROKEN rows\n%s\n%s", exitCode(r.Err), len(trees)+1, r.Stdout, r.Stderr)
	}

	r = a.run("check")
	if exitCode(r.Err) != 3 {
		t.Errorf("check: exit %d, want 3", exitCode(r.Err))
	}
	for _, h := range trees {
		mentions(t, "check output", r.Stdout, "hostile-"+h.name+":v1")
	}
	for _, h := range trees {
		mentions(t, "check output", r.Stdout, h.want)
	}
	if strings.Contains(r.Stdout, "good:v1") {
		t.Errorf("check reports the good image:\n%s", r.Stdout)
	}

	for _, h := range trees[:2] {
		r = a.run("push", "hostile-"+h.name+":v1", srv.Host+"/pushed/"+h.name+":v1")
		if r.Err == nil {
			t.Errorf("push of %s succeeded", h.name)
		}
		mentions(t, "push stderr", r.Stderr, "refusing to send an invalid image", h.want)
		if remoteHasTag(t, srv.Host, "pushed/"+h.name, "v1") {
			t.Errorf("push tagged the invalid image %s", h.name)
		}
	}
	a.must("push", "good:v1", srv.Host+"/pushed/good:v1")
}

// addGhostRef adds to index.json, as another tool could, a ref naming an
// image index blob the store does not have; it returns that digest.
func addGhostRef(t *testing.T, dir, name string) digest.Digest {
	t.Helper()
	ghost := digest.FromString("not in the store")
	rewriteIndex(t, dir, func(ms []ocispec.Descriptor) []ocispec.Descriptor {
		return append(ms, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: ghost, Size: 321,
			Annotations: map[string]string{ocispec.AnnotationRefName: name}})
	})
	return ghost
}
