package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// writeA writes the first test tree: files, a symlink, a hardlink, an
// empty file, a deep directory.
func writeA(t *testing.T, root string) {
	w := newTreeWriter(t, root, 1)
	w.file("bin/app", w.random(300<<10), 0o755)
	w.file("etc/conf", []byte("key=value\n"), 0o644)
	w.symlink("etc/link", "conf")
	w.file("lib/big", w.random(2<<20), 0o644)
	w.link("hard", "bin/app")
	w.file("empty", nil, 0o600)
	w.file("dir/sub/deep", []byte("deep\n"), 0o640)
	fixTimes(t, root)
}

// writeB is A with lib/big grown, etc/conf changed, empty removed and
// new added.
func writeB(t *testing.T, root string) {
	writeA(t, root)
	w := newTreeWriter(t, root, 2)
	big, err := os.ReadFile(filepath.Join(root, "lib/big"))
	if err != nil {
		t.Fatal(err)
	}
	w.file("lib/big", append(big, w.random(100<<10)...), 0o644)
	w.file("etc/conf", []byte("key=other\n"), 0o644)
	if err := os.Remove(filepath.Join(root, "empty")); err != nil {
		t.Fatal(err)
	}
	w.file("new", []byte("new\n"), 0o644)
	fixTimes(t, root)
}

type createOut struct {
	Digest   string   `json:"digest"`
	Manifest string   `json:"manifest"`
	Root     string   `json:"root"`
	Platform string   `json:"platform"`
	Tags     []string `json:"tags"`
	Stats    struct {
		Entries      int64 `json:"entries"`
		LogicalBytes int64 `json:"logical_bytes"`
		StoredNew    int64 `json:"stored_new_bytes"`
	} `json:"stats"`
	DedupRatio *float64 `json:"dedup_ratio"`
}

type imageOut struct {
	Name         string   `json:"name"`
	Digest       string   `json:"digest"`
	Platforms    []string `json:"platforms"`
	LogicalBytes int64    `json:"logical_bytes"`
}

func images(c cli) map[string]imageOut {
	var rows []imageOut
	c.mustJSON(&rows, "images")
	out := map[string]imageOut{}
	for _, r := range rows {
		out[r.Name] = r
	}
	return out
}

func countBlobs(t *testing.T, store string) int {
	ents, err := os.ReadDir(filepath.Join(store, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestWorkflow(t *testing.T) {
	dir := t.TempDir()
	srcA, srcB := filepath.Join(dir, "A"), filepath.Join(dir, "B")
	writeA(t, srcA)
	writeB(t, srcB)
	c := cli{t, filepath.Join(dir, "store")}
	const logicalA = 300<<10 + 10 + 2<<20 + 5 // hardlinked bin/app counted once
	const nameB = "localhost:5000/x/b:v1"

	var a, b createOut
	c.mustJSON(&a, "create", "--tag", "a", srcA)
	c.mustJSON(&b, "create", "-t", nameB, srcB)
	platform := "linux/" + runtime.GOARCH
	if runtime.GOARCH == "arm64" {
		platform += "/v8"
	}
	if a.Tags[0] != "docker.io/library/a:latest" || a.Platform != platform || a.Stats.LogicalBytes != logicalA ||
		a.Stats.Entries == 0 || a.DedupRatio == nil || !strings.HasPrefix(a.Digest, "sha256:") {
		t.Errorf("create a: %+v", a)
	}
	if b.Stats.StoredNew >= a.Stats.StoredNew {
		t.Errorf("b stored %d new bytes, a %d: nothing deduplicated", b.Stats.StoredNew, a.Stats.StoredNew)
	}
	// The same tree again: same digest, nothing new stored.
	var again createOut
	c.mustJSON(&again, "create", srcA)
	if again.Digest != a.Digest || again.Stats.StoredNew != 0 || again.DedupRatio != nil {
		t.Errorf("second create of A: %+v, first %+v", again, a)
	}

	imgs := images(c)
	if len(imgs) != 2 {
		t.Fatalf("images: %+v", imgs)
	}
	if ia := imgs["docker.io/library/a:latest"]; ia.Digest != a.Digest || ia.LogicalBytes != logicalA ||
		len(ia.Platforms) != 1 || ia.Platforms[0] != platform {
		t.Errorf("image a: %+v", ia)
	}
	if ib := imgs[nameB]; ib.Digest != b.Digest {
		t.Errorf("image b: %+v", ib)
	}
	if out := c.must("images"); !strings.Contains(out, "a:latest") || !strings.Contains(out, nameB) {
		t.Errorf("images table:\n%s", out)
	}

	var insp struct {
		Digest   string `json:"digest"`
		Root     string `json:"root"`
		Manifest struct {
			Layers []json.RawMessage `json:"layers"`
		} `json:"manifest"`
		Config struct {
			OS string `json:"os"`
		} `json:"config"`
		Packs []struct {
			Type string `json:"type"`
		} `json:"packs"`
		Stats struct {
			Files, Hardlinks, Symlinks, LogicalBytes int64
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(c.must("inspect", "a")), &insp); err != nil {
		t.Fatal(err)
	}
	if insp.Digest != a.Digest || insp.Root != a.Root || insp.Config.OS != "linux" ||
		len(insp.Packs) == 0 || len(insp.Manifest.Layers) != 2*len(insp.Packs) {
		t.Errorf("inspect a: %+v", insp)
	}

	wantA := snapshot(t, srcA)
	for _, ref := range []string{"a", "docker.io/library/a:latest", a.Digest} {
		dest := filepath.Join(t.TempDir(), "out")
		c.must("unpack", ref, dest)
		sameTree(t, wantA, snapshot(t, dest))
	}

	diff := c.must("diff", "a", nameB)
	for _, line := range []string{"C /etc/conf [content]", "C /lib/big [content]", "D /empty", "A /new"} {
		if !strings.Contains(diff, line+"\n") {
			t.Errorf("diff lacks %q:\n%s", line, diff)
		}
	}
	if strings.Contains(diff, "/bin") || strings.Contains(diff, "/dir") {
		t.Errorf("diff lists unchanged paths:\n%s", diff)
	}
	var changes []struct{ Path, Kind string }
	c.mustJSON(&changes, "diff", "a", nameB)
	if len(changes) != strings.Count(diff, "\n") {
		t.Errorf("diff --json has %d changes, text %d lines", len(changes), strings.Count(diff, "\n"))
	}

	c.must("tag", "a", "c:1")
	c.must("rm", "a")
	imgs = images(c)
	if _, ok := imgs["docker.io/library/a:latest"]; ok || imgs["docker.io/library/c:1"].Digest != a.Digest {
		t.Fatalf("after tag and rm: %+v", imgs)
	}

	var du struct {
		Images []struct {
			Name                                   string
			LogicalBytes, StoredBytes, UniqueBytes int64
		}
		LogicalBytes int64 `json:"logical_bytes"`
		StoredBytes  int64 `json:"stored_bytes"`
	}
	c.mustJSON(&du, "du")
	if len(du.Images) != 2 || du.LogicalBytes < logicalA || du.StoredBytes == 0 {
		t.Errorf("du: %+v", du)
	}

	// gc: nothing to delete while c names A; after rm c, A's own frames go.
	c.must("gc")
	before := countBlobs(t, c.store)
	c.must("rm", "c:1")
	var gc struct {
		Deleted int64 `json:"deleted_blobs"`
		Bytes   int64 `json:"deleted_bytes"`
		New     int64 `json:"compacted_new_units"` // units written by compaction
	}
	c.mustJSON(&gc, "gc", "--dry-run")
	if countBlobs(t, c.store) != before || gc.Deleted == 0 {
		t.Fatalf("gc --dry-run: %+v, blobs %d -> %d", gc, before, countBlobs(t, c.store))
	}
	c.mustJSON(&gc, "gc")
	if after := countBlobs(t, c.store); gc.Deleted == 0 || after != before-int(gc.Deleted)+int(gc.New) {
		t.Errorf("gc: %+v, blobs %d -> %d", gc, before, after)
	}
	c.must("check", "--read-data")
	dest := filepath.Join(t.TempDir(), "out")
	c.must("unpack", nameB, dest)
	sameTree(t, snapshot(t, srcB), snapshot(t, dest))
	if _, err := os.Stat(filepath.Join(c.store, "oci2", "cache", "files")); err != nil {
		t.Errorf("files cache not saved: %v", err)
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeA(t, src)
	c := cli{t, filepath.Join(dir, "store")}
	var a createOut
	c.mustJSON(&a, "create", "--tag", "a", src)

	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{}, 0}, // help
		{[]string{"frobnicate"}, 2},
		{[]string{"images", "--bogus"}, 2},
		{[]string{"unpack", "a"}, 2},
		{[]string{"create", "--tag", "Bad Name", src}, 2},
		{[]string{"create", "--platform", "linux", src}, 2},
		{[]string{"create", "--source-date-epoch", "soon", src}, 2},
		{[]string{"create", filepath.Join(dir, "missing")}, 1},
		{[]string{"tag", "a", "UPPER"}, 2},
		{[]string{"rm", "nosuch"}, 1},
		{[]string{"unpack", "nosuch", filepath.Join(dir, "x")}, 1},
		{[]string{"inspect", "sha256:0000000000000000000000000000000000000000000000000000000000000000"}, 1},
		{[]string{"check"}, 0},
		{[]string{"gc", "--dry-run"}, 0},
	} {
		if r := c.run(tc.args...); r.code != tc.code {
			t.Errorf("oci2 %s: exit %d, want %d\nstderr: %s", strings.Join(tc.args, " "), r.code, tc.code, r.stderr)
		}
	}

	// A missing pack index: check exits 3 and names it.
	var insp struct {
		Packs []struct{ Type, Index string }
	}
	if err := json.Unmarshal([]byte(c.must("inspect", "a")), &insp); err != nil {
		t.Fatal(err)
	}
	var victim string
	for _, p := range insp.Packs {
		if p.Type == "data" {
			victim = p.Index
		}
	}
	if victim == "" {
		t.Fatal("no data pack")
	}
	if err := os.Remove(filepath.Join(c.store, "blobs", "sha256", strings.TrimPrefix(victim, "sha256:"))); err != nil {
		t.Fatal(err)
	}
	r := c.run("check")
	if r.code != 3 || !strings.Contains(r.stdout, victim) || !strings.Contains(r.stdout, "docker.io/library/a:latest") {
		t.Errorf("check of a broken store: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		Problems []struct{ Ref, Blob, Message string }
	}
	r = c.run("check", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 3 || len(rep.Problems) == 0 || rep.Problems[0].Blob != victim {
		t.Errorf("check --json: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	// gc refuses to run with an incomplete mark.
	if r := c.run("gc"); r.code != 1 {
		t.Errorf("gc of a broken store: exit %d", r.code)
	}
}
