package tests

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCheckRepairRebuildsUnitDescriptors: a store that lost its unit
// descriptors (oci2/units) cannot read the virtual frames of an image
// (check --read-data fails); check --repair rebuilds them from the unit
// blobs, after which check passes and the image unpacks identically.
func TestCheckRepairRebuildsUnitDescriptors(t *testing.T) {
	dir := workDir(t)
	base, derived := filepath.Join(dir, "base"), filepath.Join(dir, "derived")
	writeMediumTree(t, base, 5, 80)
	writeMediumTree(t, derived, 5, 110) // the same 80 files, then 30 more
	s := newStore(t, filepath.Join(dir, "store"))
	s.create(base, "base")
	s.create(derived, "derived")

	units := filepath.Join(s.dir, "oci2", "units")
	entries, err := os.ReadDir(units)
	if err != nil || len(entries) == 0 {
		t.Fatalf("the derived image made no units (%v): the test needs virtual frames", err)
	}
	if err := os.RemoveAll(units); err != nil {
		t.Fatal(err)
	}
	if r := s.run("check", "--read-data"); r.Err == nil {
		t.Fatalf("check passes on a store without its unit descriptors:\n%s%s", r.Stdout, r.Stderr)
	}
	r := s.must("check", "--repair", "--read-data")
	t.Logf("%s", r.Stderr)
	got := filepath.Join(dir, "unpacked")
	s.must("unpack", "derived", got)
	compareTrees(t, snapshot(t, derived), snapshot(t, got), compareOptions{SkipRoot: true})
}
