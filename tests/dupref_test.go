package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/internal/testenv"
)

// TestDuplicateRefGC: an index.json edited as another tool would, naming
// one ref twice and holding an entry without a name. The first entry of a
// name wins everywhere (images, resolve), as skopeo reads it; check calls
// the name ambiguous; gc deletes no blob any entry reaches, so skopeo and
// umoci still read the store, and the shadowed and foreign images unpack
// intact once named.
func TestDuplicateRefGC(t *testing.T) {
	testenv.RequireTools(t, "skopeo", "umoci")
	dir := workDir(t)
	s := newStore(t, filepath.Join(dir, "store"))
	trees := map[string]string{}
	digests := map[string]string{}
	for i, n := range []string{"first", "shadowed", "foreign", "other"} {
		src := filepath.Join(dir, n)
		writeMediumTree(t, src, uint64(50+i), 12)
		trees[n] = src
		digests[n], _ = s.create(src, n+":v1")
	}
	// x:v1 is named by "first" then by "shadowed"; "foreign" loses its name.
	rewriteIndex(t, s.dir, func(ms []ocispec.Descriptor) []ocispec.Descriptor {
		byName := map[string]ocispec.Descriptor{}
		for _, m := range ms {
			byName[strings.TrimSuffix(strings.TrimPrefix(m.Annotations[ocispec.AnnotationRefName], "docker.io/library/"), ":v1")] = m
		}
		named := func(n, name string) ocispec.Descriptor {
			d := byName[n]
			d.Annotations = map[string]string{ocispec.AnnotationRefName: name}
			if name == "" {
				d.Annotations = nil
			}
			return d
		}
		return []ocispec.Descriptor{named("first", "docker.io/library/x:v1"), named("shadowed", "docker.io/library/x:v1"),
			named("foreign", ""), named("other", "docker.io/library/other:v1")}
	})

	var rows []struct{ Name, Digest string }
	if err := json.Unmarshal([]byte(s.must("images", "--json").Stdout), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("images --json: %v, %d rows", err, len(rows))
	}
	if rows[1].Name != "docker.io/library/x:v1" || rows[1].Digest != digests["first"] {
		t.Errorf("images: %+v, want x:v1 = %s (the first entry)", rows, digests["first"])
	}
	r := s.run("check")
	if exitCode(r.Err) != 3 {
		t.Errorf("check: exit %d, want 3", exitCode(r.Err))
	}
	mentions(t, "check output", r.Stdout, "docker.io/library/x:v1", digests["shadowed"], "ambiguous")

	s.must("gc")
	checkLayoutBlobs(t, s.dir)
	raw := mustRun(t, nil, "skopeo", "inspect", "--raw", "oci:"+s.dir+":docker.io/library/x:v1").Stdout
	if got := digest.FromString(raw).String(); got != digests["first"] {
		t.Errorf("skopeo reads x:v1 as %s, oci2 as %s", got, digests["first"])
	}
	mustRun(t, nil, "skopeo", "inspect", "oci:"+s.dir+":docker.io/library/other:v1")
	mustRun(t, nil, "umoci", "stat", "--image", s.dir+":docker.io/library/other:v1")
	if out := mustRun(t, nil, "umoci", "ls", "--layout", s.dir).Stdout; strings.Count(out, "docker.io/library/x:v1") != 2 {
		t.Errorf("umoci ls:\n%s", out)
	}

	// What gc kept is whole: the shadowed and foreign images unpack.
	for _, n := range []string{"first", "shadowed", "foreign"} {
		s.must("tag", digests[n], "kept-"+n)
		dest := filepath.Join(dir, "out-"+n)
		s.must("unpack", "kept-"+n, dest)
		compareTrees(t, snapshot(t, trees[n]), snapshot(t, dest), compareOptions{})
	}
	// `tag x x` leaves x to its first entry alone; the store is then clean.
	s.must("tag", "x:v1", "x:v1")
	s.must("check")
	s.must("gc")
	checkLayoutBlobs(t, s.dir)
	mustRun(t, nil, "umoci", "stat", "--image", s.dir+":docker.io/library/x:v1")
}

// rewriteIndex replaces the manifests of the store's index.json with
// edit's result, as another tool editing the layout would.
func rewriteIndex(t *testing.T, dir string, edit func([]ocispec.Descriptor) []ocispec.Descriptor) {
	t.Helper()
	p := filepath.Join(dir, "index.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	idx.Manifests = edit(idx.Manifests)
	if b, err = json.Marshal(idx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkLayoutBlobs fails t unless every blob that an entry of index.json
// reaches through indexes and manifests is in the layout (packs excepted:
// an oci2 store keeps their frames, SPEC.md §8).
func checkLayoutBlobs(t *testing.T, dir string) {
	t.Helper()
	var idx ocispec.Index
	readLayoutJSON(t, dir, "index.json", &idx)
	todo := idx.Manifests
	for len(todo) > 0 {
		d := todo[0]
		todo = todo[1:]
		p := filepath.Join("blobs", d.Digest.Algorithm().String(), d.Digest.Encoded())
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("index.json reaches %s (%s), which the layout lacks", d.Digest, d.MediaType)
			continue
		}
		switch d.MediaType {
		case ocispec.MediaTypeImageIndex:
			var sub ocispec.Index
			readLayoutJSON(t, dir, p, &sub)
			todo = append(todo, sub.Manifests...)
		case ocispec.MediaTypeImageManifest:
			var m ocispec.Manifest
			readLayoutJSON(t, dir, p, &m)
			todo = append(todo, m.Config)
			for _, l := range m.Layers {
				if !strings.HasPrefix(l.MediaType, "application/vnd.oci2.pack.") {
					todo = append(todo, l)
				}
			}
		}
	}
}

func readLayoutJSON(t *testing.T, dir, rel string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}
