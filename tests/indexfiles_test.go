package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store/local"
	"github.com/oci2/oci2/store/registry/registrytest"
)

// indexScans is what `oci2 --index-stats` prints: what the command's index
// scans read from the store (index.ScanStats).
type indexScans struct {
	Manifests   int64 `json:"manifests"`
	PackIndexes int64 `json:"pack_indexes"`
	Units       int64 `json:"units"`
	Frames      int64 `json:"frames"`
}

func parseIndexScans(t *testing.T, stderr string) indexScans {
	t.Helper()
	const prefix = "oci2: index scans: "
	for _, l := range strings.Split(stderr, "\n") {
		if s, ok := strings.CutPrefix(l, prefix); ok {
			var st indexScans
			if err := json.Unmarshal([]byte(s), &st); err != nil {
				t.Fatalf("decoding %q: %v", l, err)
			}
			return st
		}
	}
	t.Fatalf("no %q line in stderr:\n%s", prefix, stderr)
	return indexScans{}
}

// indexFilesStore is a store holding base and derived, a tree changed from
// base written into the warm store (so its new chunks went into units and
// its frames are virtual: reading them needs the index), and base exported
// to an OCI layout for import.
func indexFilesStore(t *testing.T, dir string) (s *store, layout string) {
	s = regStore(t, filepath.Join(dir, "store"))
	base, derived := filepath.Join(dir, "base"), filepath.Join(dir, "derived")
	for i := range 6 {
		writeRandom(t, filepath.Join(base, "d", string(rune('a'+i))), 700<<10, uint64(10+i))
	}
	copyTree(t, base, derived)
	// more new data than a unit holds (index.DefaultUnitSize): a smaller
	// write stores its new frames as blobs, as in an empty store
	writeRandom(t, filepath.Join(derived, "d", "new"), 9<<20, 99)
	writeRandom(t, filepath.Join(derived, "d", "b"), 300<<10, 98)
	s.create(base, "base")
	s.create(derived, "derived")
	layout = filepath.Join(dir, "layout")
	s.must("export", "base", "oci:"+layout+":base")
	return s, layout
}

// TestCommandsUseIndexFiles: commands that read a local store's images
// locate its chunks through the store's index files. On a store whose
// files cover every ref their index scans read nothing (before, each
// scanned every image in memory); with the files removed the same command
// scans the store, prints the same result and writes the files again.
func TestCommandsUseIndexFiles(t *testing.T) {
	dir := t.TempDir()
	srv := registrytest.Start(t, registrytest.Options{})
	s, layout := indexFilesStore(t, dir)
	indexDir := filepath.Join(s.dir, "oci2", "index")

	// The files each create saved say its image index, manifest and pack
	// indexes are done, with their frames: they cover every ref.
	if got := parseIndexScans(t, s.must("--index-stats", "du").Stderr); got != (indexScans{}) {
		t.Errorf("du after the creates scanned %+v, want nothing", got)
	}

	// Each command, and how much of its output a rerun must repeat (a
	// second import or push finds its blobs there already).
	type command struct {
		args []string
		same func(stdout string) string
	}
	whole := func(out string) string { return out }
	digestOf := func(out string) string { return digestField(decodeJSON(t, out)) }
	cmds := []command{
		{[]string{"du", "--json"}, whole},
		{[]string{"diff", "--json", "base", "derived"}, whole},
		{[]string{"images", "--json"}, whole},
		{[]string{"tag", "derived", "derived-copy"}, whole},
		{[]string{"push", "--json", "derived", srv.Host + "/derived:v1"}, digestOf},
		{[]string{"import", "--json", "--tag", "imported", "oci:" + layout + ":base"}, digestOf},
	}
	// A scan reads the image index and manifest of base and derived
	// (derived-copy and imported name the same images), their tree and
	// data pack indexes, every unit descriptor, and looks up their frames.
	units, err := os.ReadDir(filepath.Join(s.dir, "oci2", "units"))
	if err != nil {
		t.Fatal(err)
	}
	packIndexes := 0
	for _, name := range []string{"docker.io/library/base:latest", "docker.io/library/derived:latest"} {
		packIndexes += len(packIndexesOf(t, s.dir, name))
	}
	var firstScan indexScans
	for _, c := range cmds {
		name := c.args[0]
		r := s.must(append([]string{"--index-stats"}, c.args...)...)
		if got := parseIndexScans(t, r.Stderr); got != (indexScans{}) {
			t.Errorf("%s on a store with index files scanned %+v, want nothing", name, got)
		}
		if err := os.RemoveAll(indexDir); err != nil {
			t.Fatal(err)
		}
		scanned := s.must(append([]string{"--index-stats"}, c.args...)...)
		got := parseIndexScans(t, scanned.Stderr)
		if firstScan == (indexScans{}) {
			firstScan = got
		}
		if got.Manifests != 4 || got.PackIndexes != int64(packIndexes) || got.Units != int64(len(units)) || got.Frames == 0 || got != firstScan {
			t.Errorf("%s without index files: scans %+v, want 4 manifests, %d pack indexes, %d units and the frames of the first scan %+v",
				name, got, packIndexes, len(units), firstScan)
		}
		if c.same(scanned.Stdout) != c.same(r.Stdout) {
			t.Errorf("%s: with index files\n%s\nafter a scan\n%s", name, r.Stdout, scanned.Stdout)
		}
	}

	// pull into another store holding base: its index files say which
	// frames it has, and that create's image index, manifest and two pack
	// indexes are done, so the pull's index reads none of them again.
	other := regStore(t, filepath.Join(dir, "other"))
	other.create(filepath.Join(dir, "base"), "base")
	r := other.must("--index-stats", "pull", "--json", srv.Host+"/derived:v1")
	if got := parseIndexScans(t, r.Stderr); got != (indexScans{}) {
		t.Errorf("pull into a store with index files scanned %+v, want nothing", got)
	}

	// imports save index files that cover their images (derived's, into
	// a warm store, stores units: du needs the index to size it).
	s.must("export", "derived", "oci:"+layout+":derived")
	fresh := regStore(t, filepath.Join(dir, "fresh"))
	fresh.must("import", "--tag", "base", "oci:"+layout+":base")
	fresh.must("import", "--tag", "derived", "oci:"+layout+":derived")
	if got := parseIndexScans(t, fresh.must("--index-stats", "du").Stderr); got != (indexScans{}) {
		t.Errorf("du after an import scanned %+v, want nothing", got)
	}
}

// packIndexesOf returns the pack indexes of image name of the store in dir.
func packIndexesOf(t *testing.T, dir, name string) []digest.Digest {
	t.Helper()
	st, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := reader.Resolve(t.Context(), st, st, name, nil)
	if err != nil {
		t.Fatalf("resolving %s: %v", name, err)
	}
	img, err := reader.Open(t.Context(), st, m)
	if err != nil {
		t.Fatal(err)
	}
	var out []digest.Digest
	for _, list := range [][]reader.Pack{img.TreePacks, img.DataPacks} {
		for _, p := range list {
			out = append(out, p.IndexDescriptor.Digest)
		}
	}
	return out
}
