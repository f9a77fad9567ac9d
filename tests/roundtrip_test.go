package tests

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRoundTripExotic: create then unpack gives back every entry exactly
// (type, mode, owner, mtime in ns, size, device numbers, hardlink groups,
// symlink targets, xattrs, content and hole layout), and creating the
// unpacked tree again gives the same digest.
func TestRoundTripExotic(t *testing.T) {
	requireRoot(t)
	dir := workDir(t)
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	buildExotic(t, src)
	want := snapshot(t, src)
	if len(want["sparse/huge"].Data) != 4 {
		t.Fatalf("this filesystem does not keep holes (sparse/huge has extents %v)", want["sparse/huge"].Data)
	}

	s := newStore(t, filepath.Join(dir, "store"))
	d1, out := s.create(src, "exotic:v1")
	t.Logf("create: %s %v", d1, out)

	dest := filepath.Join(dir, "dest")
	s.must("unpack", "exotic:v1", dest)
	got := snapshot(t, dest)
	compareTrees(t, want, got, compareOptions{Holes: true})

	// Deterministic, and independent of the source directory: the unpacked
	// copy (new inodes, new path) snapshots to the same digest.
	if d2, _ := s.create(src, ""); d2 != d1 {
		t.Errorf("second create of the same tree: digest %s, first was %s", d2, d1)
	}
	if d3, _ := s.create(dest, ""); d3 != d1 {
		t.Errorf("create of the unpacked copy: digest %s, source gave %s", d3, d1)
	}

	// By digest, into a second destination.
	dest2 := filepath.Join(dir, "dest2")
	s.must("unpack", d1, dest2)
	compareTrees(t, want, snapshot(t, dest2), compareOptions{Holes: true})

	s.must("check", "--read-data")
}

// TestUnpackRefusesNonEmptyDest: unpacking over existing files is refused
// and leaves them alone.
func TestUnpackRefusesNonEmptyDest(t *testing.T) {
	dir, _, s, _ := smallImage(t, "small")
	dest := filepath.Join(dir, "dest")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dest, "keep")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.run("unpack", "small", dest)
	if r.Err == nil {
		t.Fatalf("unpack into a non-empty directory succeeded; want a refusal")
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
		t.Errorf("existing file changed: %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "etc")); err == nil {
		t.Errorf("refused unpack still wrote etc/")
	}
	t.Logf("refusal: %s", r.Stderr)
}
