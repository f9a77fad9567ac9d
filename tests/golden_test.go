package tests

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sourceDateEpoch of the golden image: every mtime after it is clamped.
const sourceDateEpoch = 1700000000

// goldenDigests pins the digest `oci2 create --json` prints for
// writeSmallTree with SOURCE_DATE_EPOCH=1700000000, per GOARCH (the config
// names the architecture). The digest covers the chunking parameters, tree
// encoding, frame/pack boundaries, the pinned zstd encoder's output, the
// config and manifest JSON: a change here is a format change (SPEC.md),
// never something to re-pin silently. The amd64 value was recorded by
// running this test once the writer and packer landed (2026-11-27, writer
// and pack as of commit 4540550); the failure message prints the digest
// obtained, identical from two directories and two stores. It is the image
// index's digest: re-pinned once when the index gained the platform feature
// org.oci2.v1 (SPEC.md §6.2; manifest digests unchanged, see
// writer/TestGoldenManifest).
var goldenDigests = map[string]string{
	"amd64": "sha256:5431906481f55319926bd669c0861032238ee7ff34df6a5ceefb1e7be3384eb6",
}

// writeSmallTree makes the fixed tree of the golden test: directories,
// files (one spanning several chunks), a symlink, a hardlink, an empty
// file, a sticky dir; mtimes both before and after sourceDateEpoch.
func writeSmallTree(t testing.TB, root string) {
	t.Helper()
	b := newTreeBuilder(t, root, 7)
	uid, gid := 0, 0
	if os.Geteuid() != 0 {
		uid, gid = os.Getuid(), os.Getgid()
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	b.dir(".", 0o755, uid, gid)
	b.dir("etc", 0o755, uid, gid)
	b.file("etc/hostname", []byte("oci2\n"), 0o644, uid, gid)
	b.file("etc/os-release", []byte("NAME=\"oci2 golden\"\nID=golden\n"), 0o644, uid, gid)
	b.dir("bin", 0o755, uid, gid)
	b.file("bin/hello", []byte("#!/bin/sh\necho hello\n"), 0o755, uid, gid)
	b.symlink("bin/sh", "hello", uid, gid)
	b.link("bin/hello", "bin/hello-again")
	b.dir("usr/share/doc", 0o755, uid, gid)
	var text strings.Builder
	for i := range 40000 {
		text.WriteString(strings.Repeat("oci2 golden line ", 1+i%7))
		text.WriteString(string(rune('a' + i%26)))
		text.WriteString("\n")
	}
	b.file("usr/share/doc/long.txt", []byte(text.String()), 0o644, uid, gid)
	b.file("usr/share/doc/random.bin", b.random(700_000), 0o644, uid, gid)
	b.file("usr/share/doc/empty", nil, 0o644, uid, gid)
	b.dir("usr", 0o755, uid, gid)
	b.dir("usr/share", 0o755, uid, gid)
	b.dir("tmp", 0o1777, uid, gid)
	// everything newer than the epoch except one old file
	for rel := range b.times {
		b.setTime(rel, (sourceDateEpoch+86400)*1e9+int64(len(rel)))
	}
	b.setTime("etc/os-release", (sourceDateEpoch-3600)*1e9+500_000_001)
	b.finish()
}

// smallImage writes the small tree into a fresh work directory and creates
// it as ref in a new store there; it returns the directory, the tree, the
// store and the image's digest.
func smallImage(t testing.TB, ref string) (dir, src string, s *store, digest string) {
	t.Helper()
	dir = workDir(t)
	src = filepath.Join(dir, "src")
	writeSmallTree(t, src)
	s = newStore(t, filepath.Join(dir, "store"))
	digest, _ = s.create(src, ref)
	return dir, src, s, digest
}

// TestGoldenDigest: a fixed tree with SOURCE_DATE_EPOCH gives a pinned
// digest, on every machine and from any directory.
func TestGoldenDigest(t *testing.T) {
	requireRoot(t) // ownership 0:0 is part of the digest
	dir := workDir(t)
	var digests []string
	for _, name := range []string{"a", "some/other/place"} {
		src := filepath.Join(dir, name)
		writeSmallTree(t, src)
		s := newStore(t, filepath.Join(dir, "store-"+strings.ReplaceAll(name, "/", "-")))
		s.env = []string{"SOURCE_DATE_EPOCH=1700000000"}
		d, _ := s.create(src, "golden")
		digests = append(digests, d)

		// mtimes after the epoch are clamped, earlier ones kept
		dest := filepath.Join(dir, "unpacked-"+strings.ReplaceAll(name, "/", "-"))
		s.must("unpack", "golden", dest)
		for rel, want := range map[string]int64{
			"etc/hostname":   sourceDateEpoch * 1e9,
			"etc/os-release": (sourceDateEpoch-3600)*1e9 + 500_000_001,
			"bin/sh":         sourceDateEpoch * 1e9,
			"usr/share":      sourceDateEpoch * 1e9,
		} {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dest, rel), &st); err != nil {
				t.Fatal(err)
			}
			if got := st.Mtim.Nano(); got != want {
				t.Errorf("%s: mtime %s, want %s", rel, time.Unix(0, got).UTC(), time.Unix(0, want).UTC())
			}
		}
	}
	if digests[0] != digests[1] {
		t.Fatalf("same tree in two directories and stores: digests %s and %s", digests[0], digests[1])
	}
	want, ok := goldenDigests[runtime.GOARCH]
	switch {
	case !ok:
		t.Skipf("no golden digest pinned for GOARCH=%s (got %s)", runtime.GOARCH, digests[0])
	case want == "":
		t.Fatalf("golden digest not pinned yet: got %s (record it in goldenDigests)", digests[0])
	case digests[0] != want:
		t.Fatalf("golden digest changed: got %s, pinned %s\n"+
			"(a format or encoder change: see SPEC.md §5.2 before re-pinning)", digests[0], want)
	}
}
