package tests

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/image/unpack/unpacktest"
	"github.com/oci2/oci2/internal/testenv"
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
	mnt2, _ := mountInProcess(t, s.dir, "exotic:v1")
	checkMountPOSIX(t, mnt, mnt2)
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

// checkMountPOSIX checks what a tree comparison does not see on a mount of
// the exotic image: stable inode numbers, seeks, xattr probes, symlinks,
// read-only errors, statfs and permissions for an unprivileged user.
func checkMountPOSIX(t *testing.T, mnt, mnt2 string) {
	p := func(rel string) string { return filepath.Join(mnt, rel) }
	t.Run("inodes", func(t *testing.T) {
		a, b := inodes(t, mnt), inodes(t, mnt2)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("inode numbers differ between two mounts of the image")
		}
		if a["links/a"] != a["links/b"] || a["links/a"] != a["files/c-link-to-a"] || a["links/a"] == a["links/empty-a"] {
			t.Errorf("hardlink inodes: %d %d %d (empty-a %d)", a["links/a"], a["links/b"], a["files/c-link-to-a"], a["links/empty-a"])
		}
		if a["."] != 1 {
			t.Errorf("root inode %d, want 1", a["."])
		}
	})
	t.Run("readdir", func(t *testing.T) {
		f, err := os.Open(p("names"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var names []string
		for { // small batches: the offsets of a continued listing must hold
			batch, err := f.Readdirnames(3)
			names = append(names, batch...)
			if err != nil {
				break
			}
		}
		if len(names) != 16 || !sort.StringsAreSorted(names) {
			t.Errorf("names/: %d entries %q, want 16 in name order", len(names), names)
		}
	})
	t.Run("seek", func(t *testing.T) {
		f, err := os.Open(p("sparse/huge"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fd := int(f.Fd())
		if off, err := unix.Seek(fd, 4096, unix.SEEK_DATA); err != nil || off != gib {
			t.Errorf("SEEK_DATA from 4096: %d, %v; want %d", off, err, gib)
		}
		if off, err := unix.Seek(fd, gib+10, unix.SEEK_HOLE); err != nil || off != gib+100<<10 {
			t.Errorf("SEEK_HOLE from 1 GiB+10: %d, %v; want %d", off, err, gib+100<<10)
		}
		if _, err := unix.Seek(fd, hugeSparse, unix.SEEK_DATA); err != unix.ENXIO {
			t.Errorf("SEEK_DATA at EOF: %v, want ENXIO", err)
		}
		buf := make([]byte, 8192)
		if n, err := f.ReadAt(buf, hugeSparse-8192-4096); err != nil || n != 8192 || !allZero(buf[:4096]) || allZero(buf[4096:]) {
			t.Errorf("read across hole and data: %d, %v", n, err)
		}
	})
	t.Run("xattrs", func(t *testing.T) {
		if n, err := unix.Lgetxattr(p("bin/ping"), "security.capability", nil); err != nil || n != len(capV2()) {
			t.Errorf("size probe of security.capability: %d, %v", n, err)
		}
		if _, err := unix.Lgetxattr(p("files/xattrs"), "user.text", make([]byte, 2)); err != unix.ERANGE {
			t.Errorf("getxattr into a small buffer: %v, want ERANGE", err)
		}
		if _, err := unix.Lgetxattr(p("files/xattrs"), "user.nope", make([]byte, 64)); err != unix.ENODATA {
			t.Errorf("absent xattr: %v, want ENODATA", err)
		}
		if n, err := unix.Lgetxattr(p("files/xattrs"), "user.empty", make([]byte, 64)); err != nil || n != 0 {
			t.Errorf("empty xattr: %d, %v", n, err)
		}
	})
	t.Run("symlinks", func(t *testing.T) {
		if got, err := os.Readlink(p("sym/long")); err != nil || got != strings.Repeat("long/", 800)+"end" {
			t.Errorf("readlink sym/long: %d bytes, %v", len(got), err)
		}
		if b, err := os.ReadFile(p("sym/relative")); err != nil || string(b) != "hello, oci2\n" {
			t.Errorf("reading through sym/relative: %q, %v", b, err)
		}
	})
	t.Run("read-only", func(t *testing.T) {
		if _, err := os.OpenFile(p("files/hello.txt"), os.O_WRONLY, 0); !errors.Is(err, unix.EROFS) {
			t.Errorf("open for writing: %v, want EROFS", err)
		}
		if err := os.Mkdir(p("new"), 0o755); !errors.Is(err, unix.EROFS) {
			t.Errorf("mkdir: %v, want EROFS", err)
		}
		if err := unix.Setxattr(p("files/hello.txt"), "user.x", []byte("y"), 0); err != unix.EROFS {
			t.Errorf("setxattr: %v, want EROFS", err)
		}
		if err := os.Chmod(p("files/hello.txt"), 0o600); !errors.Is(err, unix.EROFS) {
			t.Errorf("chmod: %v, want EROFS", err)
		}
	})
	t.Run("statfs", func(t *testing.T) {
		var st unix.Statfs_t
		if err := unix.Statfs(mnt, &st); err != nil {
			t.Fatal(err)
		}
		if st.Bsize != 4096 || st.Files != 205 || st.Flags&unix.ST_RDONLY == 0 {
			t.Errorf("statfs: bsize %d, files %d, flags %#x", st.Bsize, st.Files, st.Flags)
		}
	})
	t.Run("permissions", func(t *testing.T) {
		// uid 1000 owns files/big.bin (0640); modes/private is root's 0700.
		asUser(t, 1000, 1000, "cat", p("files/hello.txt"))
		asUser(t, 1000, 1000, "head", "-c1", p("files/big.bin"))
		for _, denied := range []string{p("modes/private/f"), p("modes/none/f")} {
			if err := asUserErr(1000, 1000, "cat", denied); err == nil {
				t.Errorf("uid 1000 read %s", denied)
			}
		}
		if err := asUserErr(2000, 2000, "head", "-c1", p("files/big.bin")); err == nil {
			t.Errorf("uid 2000 read files/big.bin (0640 1000:1000)")
		}
	})
}

// inodes maps every path of a tree to its inode number.
func inodes(t *testing.T, root string) map[string]uint64 {
	m := map[string]uint64{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		m[rel] = st.Ino
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// asUserErr runs a command with another uid and gid (no supplementary groups).
func asUserErr(uid, gid uint32, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	return cmd.Run()
}

func asUser(t *testing.T, uid, gid uint32, name string, args ...string) {
	t.Helper()
	if err := asUserErr(uid, gid, name, args...); err != nil {
		t.Errorf("uid %d: %s %v: %v", uid, name, args, err)
	}
}

// TestMountCorpus: every built corpus tree (make corpus) mounts equal to
// its unpacked copy.
func TestMountCorpus(t *testing.T) {
	testenv.RequireRoot(t, "corpus trees have foreign owners and devices")
	names := []string{"debian-minbase", "debian-python", "debian-build", "go-app-v1", "go-app-v2", "node-app-v1", "node-app-v2"}
	built := 0
	for _, name := range names {
		src := corpusTree(name)
		if src == "" {
			continue
		}
		built++
		t.Run(name, func(t *testing.T) {
			dir := workDir(t)
			s := newStore(t, filepath.Join(dir, "store"))
			s.create(src, name)
			dest := filepath.Join(dir, "dest")
			s.must("unpack", name, dest)
			mnt, _ := mountInProcess(t, s.dir, name)
			compareTrees(t, snapshot(t, dest), snapshot(t, mnt), compareOptions{Holes: true})
			compareSnapshots(t, dest, mnt)
		})
	}
	if built == 0 {
		testenv.Unavailable(t, "no corpus tree built (make corpus, or set OCI2_CORPUS)")
	}
}
