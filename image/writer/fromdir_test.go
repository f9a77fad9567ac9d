package writer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
	wt "github.com/oci2/oci2/image/writer/writertest"
	"github.com/oci2/oci2/internal/testenv"
)

// fixture is a tree exercising every entry type FromDir handles.
func fixture() wt.Tree {
	return wt.Tree{Meta: wt.Meta{Mode: 0o755}, Entries: wt.Dir{
		"a":     wt.File{Content: "foo\n"},
		"b":     wt.Hardlink{Target: "a"},
		"setid": wt.File{Content: "x", Meta: wt.Meta{Mode: 0o755 | os.ModeSetuid | os.ModeSetgid}},
		"tmp":   wt.Tree{Meta: wt.Meta{Mode: 0o777 | os.ModeSticky}, Entries: wt.Dir{}},
		"usr": wt.Dir{
			"big":  wt.File{Content: strings.Repeat("hello world ", 100000), Meta: wt.Meta{Mtime: time.Unix(1700000000, 42)}},
			"link": wt.Symlink{Target: "../a"},
			"sub":  wt.Dir{"c": wt.Hardlink{Target: "a"}},
		},
		"hole":  wt.File{Content: "start", Size: 1 << 20},
		"fifo":  wt.Fifo{Meta: wt.Meta{Mode: 0o600, Chown: true, UID: 123, GID: 456}},
		"null":  wt.Device{Major: 1, Minor: 3, Meta: wt.Meta{Mode: 0o666}},
		"loop":  wt.Device{Block: true, Major: 7, Minor: 0},
		"sock":  wt.Socket{},
		"empty": wt.File{},
	}}
}

func mkfixture(t *testing.T, tr wt.Tree) string {
	t.Helper()
	d := t.TempDir()
	if err := wt.CreateTree(d, tr); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestFromDir(t *testing.T) {
	testenv.RequireRoot(t, "devices and chown")
	d := mkfixture(t, fixture())
	var warns []string
	root, err := writer.FromDir(context.Background(), d, writer.DirOptions{Warn: func(p string, err error) {
		warns = append(warns, strings.TrimPrefix(p, d)+": "+err.Error())
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.HasPrefix(warns[0], "/sock: socket") {
		t.Errorf("warnings %q", warns)
	}
	got := map[string]*writer.Node{}
	var walk func(n *writer.Node, p string)
	walk = func(n *writer.Node, p string) {
		got[p] = n
		for _, c := range n.Children {
			walk(c, strings.TrimPrefix(p+"/"+c.Name, "/"))
		}
	}
	walk(root, "")
	check := func(p string, typ format.EntryType, mode uint32) *writer.Node {
		t.Helper()
		n := got[p]
		if n == nil {
			t.Fatalf("%s missing", p)
		}
		if n.Type != typ || n.Mode != mode {
			t.Errorf("%s: type %d mode %o, want %d %o", p, n.Type, n.Mode, typ, mode)
		}
		return n
	}
	r := check("", format.TypeDir, 0o755)
	if r.MtimeSec != wt.Epoch.Unix() || r.MtimeNsec != uint32(wt.Epoch.Nanosecond()) {
		t.Errorf("root mtime %d.%d", r.MtimeSec, r.MtimeNsec)
	}
	a, b, c := check("a", format.TypeReg, 0o644), check("b", format.TypeReg, 0o644), check("usr/sub/c", format.TypeReg, 0o644)
	if a.Inode == 0 || a.Inode != b.Inode || a.Inode != c.Inode || a.Size != 4 {
		t.Errorf("hardlink group: inodes %d %d %d", a.Inode, b.Inode, c.Inode)
	}
	check("setid", format.TypeReg, 0o6755)
	check("tmp", format.TypeDir, 0o1777)
	if n := check("usr/big", format.TypeReg, 0o644); n.MtimeSec != 1700000000 || n.MtimeNsec != 42 || n.Inode != 0 {
		t.Errorf("usr/big: mtime %d.%d inode %d", n.MtimeSec, n.MtimeNsec, n.Inode)
	}
	if n := got["usr/link"]; n.Type != format.TypeSymlink || n.Target != "../a" {
		t.Errorf("usr/link %+v", n.Entry)
	}
	if n := check("fifo", format.TypeFifo, 0o600); n.UID != 123 || n.GID != 456 {
		t.Errorf("fifo owner %d:%d", n.UID, n.GID)
	}
	if n := check("null", format.TypeChar, 0o666); n.DevMajor != 1 || n.DevMinor != 3 {
		t.Errorf("null %d,%d", n.DevMajor, n.DevMinor)
	}
	if n := check("loop", format.TypeBlock, 0o644); n.DevMajor != 7 {
		t.Errorf("loop %d,%d", n.DevMajor, n.DevMinor)
	}
	if got["sock"] != nil {
		t.Error("socket not skipped")
	}
	if n := check("hole", format.TypeReg, 0o644); n.Size != 1<<20 {
		t.Errorf("hole size %d", n.Size)
	}
}

func TestFromDirXattrs(t *testing.T) {
	d := t.TempDir()
	p := filepath.Join(d, "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(p, "user.empty", nil, 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			testenv.Unavailable(t, "no user xattrs on %s", d)
		}
		t.Fatal(err)
	}
	bin := []byte{0, 0xff, 1, 0}
	if err := unix.Lsetxattr(p, "user.bin", bin, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(p, "user.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	var warns []string
	root, err := writer.FromDir(context.Background(), d, writer.DirOptions{Warn: func(p string, err error) {
		warns = append(warns, err.Error())
	}})
	if err != nil {
		t.Fatal(err)
	}
	xs := root.Children[0].Xattrs
	if len(xs) != 2 || xs[0].Name != "user.bin" || string(xs[0].Value) != string(bin) ||
		xs[1].Name != "user.empty" || len(xs[1].Value) != 0 {
		t.Errorf("xattrs %+v", xs)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "user.overlay.opaque") {
		t.Errorf("warnings %q", warns)
	}
}

// TestSameTreeSameDigest creates the same tree in two directories and
// writes it into two fresh stores.
func TestSameTreeSameDigest(t *testing.T) {
	testenv.RequireRoot(t, "devices and chown")
	var digests []string
	for range 2 {
		d := mkfixture(t, fixture())
		root, err := writer.FromDir(context.Background(), d, writer.DirOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e := newEnv(t)
		res := e.write(root, writer.Options{Config: testConfig})
		digests = append(digests, res.Manifest.Digest.String())

		got := e.entries(res.Root)
		if en := got["b"]; en.Type != format.TypeHardlink || en.Target != "a" {
			t.Errorf("b: %+v", en)
		}
		if en := got["usr/sub/c"]; en.Type != format.TypeHardlink || en.Target != "a" {
			t.Errorf("usr/sub/c: %+v", en)
		}
		if en := got["hole"]; len(en.Extents) != 2 || !en.Extents[1].Zero || en.Extents[1].Length != 1<<20-4096 {
			t.Errorf("hole extents %+v", en.Extents)
		}
		if string(e.fileBytes(got["usr/big"])) != strings.Repeat("hello world ", 100000) {
			t.Error("usr/big content differs")
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("two copies of one tree: %s and %s", digests[0], digests[1])
	}
}

func TestFromDirSkipsMountPoints(t *testing.T) {
	// /proc is another filesystem than /: walking a directory holding a
	// bind of it is not possible without mounting, so check the root's
	// children that are mount points when walking "/" would be too slow;
	// instead walk a tmpfs-backed /dev/shm entry if it is a mount point.
	var st1, st2 unix.Stat_t
	if unix.Lstat("/dev", &st1) != nil || unix.Lstat("/dev/shm", &st2) != nil || st1.Dev == st2.Dev {
		testenv.Unavailable(t, "/dev/shm is not a separate mount")
	}
	var warned bool
	root, err := writer.FromDir(context.Background(), "/dev", writer.DirOptions{Warn: func(p string, err error) {
		if p == "/dev/shm" && strings.Contains(err.Error(), "mount point") {
			warned = true
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range root.Children {
		if c.Name == "shm" {
			t.Error("/dev/shm walked")
		}
	}
	if !warned {
		t.Error("no warning for /dev/shm")
	}
}
