package tests

import (
	"os"
	"path/filepath"
	"testing"
)

// corpusTree returns the path of a ../shared/corpus tree ($OCI2_CORPUS,
// /var/cache/oci2-corpus or /work/corpus), or "" when none is built.
func corpusTree(name string) string {
	for _, base := range []string{os.Getenv("OCI2_CORPUS"), "/var/cache/oci2-corpus", "/work/corpus"} {
		if base == "" {
			continue
		}
		p := filepath.Join(base, name)
		if _, err := os.Stat(filepath.Join(base, ".stamps", name)); err == nil {
			return p
		}
	}
	return ""
}

// TestCorpusMinbaseRoundTrip: a real distro tree (debootstrap minbase)
// round-trips exactly. Skipped when the corpus is not built (`make corpus`;
// .ci/run builds debian-minbase), failed under CI.
func TestCorpusMinbaseRoundTrip(t *testing.T) {
	requireRoot(t)
	src := corpusTree("debian-minbase")
	if src == "" {
		unavailable(t, "corpus tree debian-minbase not built (make corpus, or set OCI2_CORPUS)")
	}
	dir := workDir(t)
	want := snapshot(t, src)

	s := newStore(t, filepath.Join(dir, "store"))
	d, out := s.create(src, "minbase")
	t.Logf("create %s: %d entries, %d logical bytes, %d stored bytes", d,
		num(out, "entries"), num(out, "logical_bytes"), num(out, "stored_bytes"))

	dest := filepath.Join(dir, "dest")
	s.must("unpack", "minbase", dest)
	// Holes are not compared: the format may turn long zero runs of dense
	// files into holes (SPEC.md §3); content must be equal.
	compareTrees(t, want, snapshot(t, dest), compareOptions{})

	if d2, _ := s.create(dest, ""); d2 != d {
		t.Errorf("create of the unpacked tree: %s, source gave %s", d2, d)
	}
	s.must("check", "--read-data")
}
