package exporter

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/chunking"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/memstore"
)

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	r.Read(b)
	return b
}

// extentsOf chunks content as the writer does.
func extentsOf(t testing.TB, content []byte) []format.Extent {
	t.Helper()
	var ext []format.Extent
	err := chunking.NewSplitter().Split(bytes.NewReader(content), int64(len(content)), func(e format.Extent, _ []byte) error {
		ext = append(ext, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ext
}

// extentsOfFile chunks a file on disk with SplitFile (holes not read).
func extentsOfFile(t testing.TB, path string) []format.Extent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var ext []format.Extent
	if err := chunking.NewSplitter().SplitFile(f, fi.Size(), func(e format.Extent, _ []byte) error {
		ext = append(ext, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ext
}

func hasZero(ext []format.Extent) bool {
	return slices.ContainsFunc(ext, func(x format.Extent) bool { return x.Zero })
}

func writeFile(t testing.TB, dir, rel string, b []byte) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// walkTree walks dir as openTree does and returns the tree with its
// regular file nodes by slash path.
func walkTree(t testing.TB, dir string) (*writer.Node, map[string]*writer.Node) {
	t.Helper()
	root, err := writer.FromDir(context.Background(), dir, writer.DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*writer.Node{}
	walkFiles(root, "", func(p string, n *writer.Node) { nodes[p] = n })
	return root, nodes
}

// recreatedKey is the key the file had in an earlier snapshot, before
// a COPY step re-created it: same path, size and mtime, another inode
// and ctime.
func recreatedKey(n *writer.Node) fileKey {
	sf := n.Content.(*writer.SourceFile)
	return fileKey{path: sf.Rel, ino: sf.Ino + 1000, size: sf.Size, mtime: sf.MtimeNs, ctime: sf.CtimeNs - 7}
}

func TestCacheVerify(t *testing.T) {
	dir := t.TempDir()
	withZeros := slices.Concat(randBytes(1, 40960), make([]byte, 128<<10), randBytes(2, 10000))
	orig := map[string][]byte{
		"a":     randBytes(3, 300<<10), // several chunks
		"b":     randBytes(4, 5000),    // one chunk
		"sub/c": randBytes(5, 1<<20),
		"zeros": withZeros,
		"ident": randBytes(6, 70000),
	}
	for rel, b := range orig {
		writeFile(t, dir, rel, b)
	}
	// A sparse file: data, a 1 MiB hole, data.
	sparse := filepath.Join(dir, "sparse")
	writeFile(t, dir, "sparse", randBytes(7, 8192))
	f, err := os.OpenFile(sparse, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(randBytes(8, 5000), 8192+1<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// Files whose cached extents are of other bytes.
	changed := randBytes(9, 200<<10)
	changedNow := slices.Clone(changed)
	changedNow[len(changedNow)-1] ^= 1 // in the last extent
	writeFile(t, dir, "changed", changedNow)
	zerosNow := slices.Clone(withZeros)
	zerosNow[40960+100000] = 1 // inside the zero extent
	writeFile(t, dir, "zeros-changed", zerosNow)
	resized := randBytes(10, 90000)
	writeFile(t, dir, "resized", append(slices.Clone(resized), 'x'))

	root, nodes := walkTree(t, dir)
	want := map[string][]format.Extent{}
	for rel, b := range orig {
		want[rel] = extentsOf(t, b)
	}
	want["sparse"] = extentsOfFile(t, sparse)
	if !hasZero(want["zeros"]) || !hasZero(want["sparse"]) || len(want["a"]) < 3 {
		t.Fatalf("test files do not have the extents they are for: zeros %v, sparse %v, a %d extents",
			want["zeros"], want["sparse"], len(want["a"]))
	}

	c := NewSnapshotFileCache(0)
	// An older export stored other extents under the same paths and sizes:
	// level 2 must use the newest.
	stale := map[fileKey][]format.Extent{}
	for _, rel := range []string{"a", "b", "sparse"} {
		k := recreatedKey(nodes[rel])
		k.ino += 5000
		stale[k] = extentsOf(t, randBytes(11, int(k.size)))
	}
	c.add(stale)
	entries := map[fileKey][]format.Extent{}
	for rel, ext := range want {
		if rel != "ident" {
			entries[recreatedKey(nodes[rel])] = ext
		}
	}
	sf := nodes["ident"].Content.(*writer.SourceFile)
	entries[fileKey{path: "ident", ino: sf.Ino, size: sf.Size, mtime: sf.MtimeNs, ctime: sf.CtimeNs}] = want["ident"]
	entries[recreatedKey(nodes["changed"])] = extentsOf(t, changed)
	entries[recreatedKey(nodes["zeros-changed"])] = want["zeros"]
	k := recreatedKey(nodes["resized"])
	k.size--
	entries[k] = extentsOf(t, resized)
	c.add(entries)

	tr := &mountedTree{root: root, cache: c, files: map[string]fileRecord{}}
	tr.lookup(context.Background())

	// lookup: identity hits get extents; re-created files get the newest
	// extents of their path and size as candidates, whatever their bytes.
	wantCand := map[string][]format.Extent{"changed": extentsOf(t, changed), "zeros-changed": want["zeros"]}
	for rel, w := range want {
		if rel != "ident" {
			wantCand[rel] = w
		}
	}
	for rel, n := range nodes {
		if rel == "ident" {
			if !slices.Equal(n.Extents, want["ident"]) || n.Candidate != nil {
				t.Errorf("ident: extents %v candidate %v, want an identity hit", n.Extents, n.Candidate)
			}
			continue
		}
		if n.Extents != nil || !slices.Equal(n.Candidate, wantCand[rel]) {
			t.Errorf("%s: extents %v candidate %v, want candidate %v", rel, n.Extents, n.Candidate, wantCand[rel])
		}
	}
	wantStats := CacheStats{Files: int64(len(nodes)), Hits: 1, HitBytes: int64(len(orig["ident"]))}
	if tr.stats != wantStats {
		t.Errorf("stats %+v, want %+v", tr.stats, wantStats)
	}
	if len(tr.files) != len(nodes) {
		t.Errorf("%d files recorded for remember, want %d", len(tr.files), len(nodes))
	}
	// The node gets its own copy: changing it leaves the cache alone.
	nodes["a"].Candidate[0].Length++
	if got, _ := c.candidate("a", int64(len(orig["a"]))); !slices.Equal(got, want["a"]) {
		t.Error("the cache's extents changed with a node's")
	}
	nodes["a"].Candidate[0].Length--

	// The writer checks the candidates: the unchanged files verify, the
	// changed ones are chunked, and every file gets its true extents.
	got, stats := writeTree(t, root)
	var verified, verifiedBytes int64
	for rel, n := range nodes {
		if w, ok := want[rel]; ok && rel != "ident" {
			verified++
			verifiedBytes += int64(n.Size)
			if !slices.Equal(got[n], w) {
				t.Errorf("%s: written with %v, want %v", rel, got[n], w)
			}
		}
	}
	if !slices.Equal(got[nodes["changed"]], extentsOf(t, changedNow)) ||
		!slices.Equal(got[nodes["zeros-changed"]], extentsOf(t, zerosNow)) {
		t.Error("changed files were not chunked anew")
	}
	if stats.FilesVerified != verified || stats.BytesVerified != verifiedBytes {
		t.Errorf("writer verified %d files (%d bytes), want %d (%d)", stats.FilesVerified, stats.BytesVerified, verified, verifiedBytes)
	}
}

// writeTree writes root into a memory store and returns the extents the
// writer reports per node, and its stats.
func writeTree(t testing.TB, root *writer.Node) (map[*writer.Node][]format.Extent, writer.Stats) {
	t.Helper()
	got := map[*writer.Node][]format.Extent{}
	res, err := writer.Write(context.Background(), memstore.New(), root, writer.Options{
		Config:  ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		Extents: func(n *writer.Node, ext []format.Extent) { got[n] = ext },
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, res.Stats
}

func TestCacheVerifyUnreadable(t *testing.T) {
	dir := t.TempDir()
	content := map[string][]byte{"gone": randBytes(1, 50000), "kept": randBytes(2, 60000)}
	for rel, b := range content {
		writeFile(t, dir, rel, b)
	}
	root, nodes := walkTree(t, dir)
	c := NewSnapshotFileCache(0)
	entries := map[fileKey][]format.Extent{}
	for rel, b := range content {
		entries[recreatedKey(nodes[rel])] = extentsOf(t, b)
	}
	c.add(entries)
	if err := os.Remove(filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	tr := &mountedTree{root: root, cache: c, files: map[string]fileRecord{}}
	tr.lookup(context.Background())
	// A file that cannot be opened does not verify: the writer then
	// reports the real error, naming it.
	_, err := writer.Write(context.Background(), memstore.New(), root, writer.Options{
		Config: ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}})
	if err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("write with a vanished file: %v, want an error naming it", err)
	}
}

// TestCacheVerifyRemember: the extents remember stores for a verified
// file's new identity are what level 2 offers next.
func TestCacheVerifyRemember(t *testing.T) {
	dir := t.TempDir()
	b := randBytes(1, 100000)
	writeFile(t, dir, "f", b)
	root, nodes := walkTree(t, dir)
	c := NewSnapshotFileCache(0)
	c.add(map[fileKey][]format.Extent{recreatedKey(nodes["f"]): extentsOf(t, b)})
	tr := &mountedTree{root: root, cache: c, files: map[string]fileRecord{}}
	tr.lookup(context.Background())
	tr.got, _ = writeTree(t, root)
	tr.fillExtents()
	tr.remember(context.Background(), nil, nil, nil)
	if c.Len() != 2 {
		t.Fatalf("cache holds %d entries, want 2", c.Len())
	}
	// The next export finds it by identity.
	root, _ = walkTree(t, dir)
	tr = &mountedTree{root: root, cache: c, files: map[string]fileRecord{}}
	tr.lookup(context.Background())
	if tr.stats.Hits != 1 {
		t.Errorf("second export: stats %+v, want one identity hit", tr.stats)
	}
	sf := nodes["f"].Content.(*writer.SourceFile)
	if k := c.latest[pathSize{"f", sf.Size}]; k.ino != sf.Ino || k.ctime != sf.CtimeNs {
		t.Errorf("level 2 points at %+v, want the newest identity", k)
	}
}
