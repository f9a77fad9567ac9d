package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oci2/oci2/internal/testenv"
	"github.com/oci2/oci2/unpack/unpacktest"
)

// TestMountEqualsUnpack: a FUSE mount of the exotic image shows exactly
// what `oci2 unpack` writes: types, modes with setuid/setgid/sticky,
// owners, ns mtimes, sizes, contents, holes (SEEK_DATA/SEEK_HOLE) and
// allocated blocks, device numbers, symlink targets, hardlink groups with
// their link counts, every xattr.
func TestMountEqualsUnpack(t *testing.T) {
	testenv.RequireRoot(t, "the exotic tree has devices and foreign owners")
	dir := workDir(t)
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	buildExotic(t, src)
	s := newStore(t, filepath.Join(dir, "store"))
	s.create(src, "exotic:v1")
	dest := filepath.Join(dir, "dest")
	s.must("unpack", "exotic:v1", dest)

	t.Logf("tree built, created and unpacked")
	mnt, fsys := mountInProcess(t, s.dir, "exotic:v1")
	t.Logf("mounted")
	compareTrees(t, snapshot(t, dest), snapshot(t, mnt), compareOptions{Holes: true})
	t.Logf("compared (fscompare)")
	compareSnapshots(t, dest, mnt)
	t.Logf("compared (unpacktest)")
	if st := fsys.Stats(); st.ReadErrors != 0 || st.ReadBytes == 0 {
		t.Errorf("mount stats %+v", st)
	}
}

// compareSnapshots compares two trees with unpacktest (allocated blocks
// included).
func compareSnapshots(t *testing.T, want, got string) {
	t.Helper()
	w, err := unpacktest.Take(want)
	if err != nil {
		t.Fatal(err)
	}
	g, err := unpacktest.Take(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range w {
		if xattrBytes(e.Xattrs) > ext4InodeXattrRoom {
			e.Blocks -= 8 // ext4 keeps them in a 4 KiB block of their own, counted in st_blocks
		}
	}
	if d := unpacktest.Diff(w, g, unpacktest.Options{Blocks: true}); len(d) > 0 {
		if len(d) > 40 {
			d = append(d[:40], "...")
		}
		t.Errorf("%d differences (unpacktest, blocks included):\n%s", len(d), strings.Join(d, "\n"))
	}
}

// ext4InodeXattrRoom is about what fits in a 256-byte ext4 inode; larger
// xattr sets take a block that st_blocks counts, which is the unpacked
// copy's storage detail, not the image's data.
const ext4InodeXattrRoom = 100

func xattrBytes(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v) + 16 // name, value and ext4's entry header, roughly
	}
	return n
}
