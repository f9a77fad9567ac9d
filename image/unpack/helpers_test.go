package unpack_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	rt "github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/image/unpack/unpacktest"
	"github.com/oci2/oci2/internal/testenv"
)

var randBytes = rt.RandBytes

// unprivilegedWant is what an unprivileged unpack of richTree (or a tree
// built from it) gives: no device nodes, and only the user.* xattrs of the
// capability file and its hardlink.
func unprivilegedWant(root *rt.Node) unpacktest.Snapshot {
	want := unpacktest.FromNode(root)
	delete(want, "dev/null")
	delete(want, "dev/sda")
	for _, p := range []string{"bin/ping", "bin/ping2"} {
		e := *want[p]
		e.Xattrs = map[string]string{"user.empty": "", "user.z": "\x00\x01\x02\xff"}
		want[p] = &e
	}
	return want
}

// richTree has every entry type and the metadata corner cases.
func richTree() *rt.Node {
	sparse := append(randBytes(1, 100<<10), make([]byte, 256<<10)...)
	sparse = append(sparse, randBytes(2, 5000)...)
	setuid := rt.File("su", 0o4755, []byte("#!/bin/sh\n"))
	setgid := rt.File("sg", 0o2711, []byte("x"))
	capFile := rt.File("ping", 0o755, randBytes(3, 7000))
	capFile.UID, capFile.GID = 0, 0
	// setcap cap_net_raw+ep: VFS_CAP_REVISION_2, permitted bit 13, effective.
	capv := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	capFile.Xattrs = []format.Xattr{
		{Name: "security.capability", Value: capv},
		{Name: "trusted.md5", Value: []byte("abc")},
		{Name: "user.empty", Value: nil},
		{Name: "user.z", Value: []byte{0, 1, 2, 255}},
	}
	owned := rt.File("owned", 0o640, []byte("big ids"))
	owned.UID, owned.GID = 4000000000, 4000000001
	old := rt.File("old", 0o644, []byte("1960"))
	old.MtimeSec, old.MtimeNsec = -315619200, 1
	locked := rt.Dir("locked", 0o000, rt.File("inside", 0o000, []byte("secret")), rt.Dir("sub", 0o555, rt.File("f", 0o444, nil)))
	xdir := rt.Dir("xdir", 0o1777)
	xdir.Xattrs = []format.Xattr{{Name: "user.dir", Value: []byte("v")}}
	// user.* xattrs need write permission unless privileged.
	roFile := rt.File("ro", 0o444, []byte("read only"))
	roFile.Xattrs = []format.Xattr{{Name: "user.ro", Value: []byte("1")}}
	roDir := rt.Dir("rodir", 0o555, rt.File("f", 0o644, nil))
	roDir.Xattrs = []format.Xattr{{Name: "user.ro", Value: []byte("2")}}
	lockedX := rt.Dir("lockedx", 0o000)
	lockedX.Xattrs = []format.Xattr{{Name: "user.locked", Value: []byte("3")}}
	deep := rt.Dir("deep", 0o755)
	cur := deep
	for i := 0; i < 200; i++ {
		next := rt.Dir("d", 0o755)
		cur.Children = []*rt.Node{next}
		cur = next
	}
	cur.Children = []*rt.Node{rt.File("bottom", 0o644, []byte("deep"))}
	lnk := rt.Symlink("abs", "/etc/passwd")
	lnk.UID, lnk.GID = 7, 8
	lnk.MtimeNsec = 5
	names := rt.Dir("names", 0o755,
		rt.File("with space", 0o644, []byte("1")),
		rt.File("new\nline", 0o644, []byte("2")),
		rt.File("bad\xff\xfeutf8", 0o644, []byte("3")),
		rt.File(strings.Repeat("n", 255), 0o644, []byte("4")),
		rt.File("-dash", 0o644, []byte("5")),
	)
	root := rt.Dir("", 0o755,
		rt.Dir("bin", 0o755, setuid, setgid, capFile, rt.Hardlink("ping2", "bin/ping")),
		rt.Dir("dev", 0o755,
			rt.Device("null", format.TypeChar, 0o666, 1, 3),
			rt.Device("sda", format.TypeBlock, 0o660, 8, 0),
			rt.Fifo("fifo", 0o620),
		),
		rt.Dir("etc", 0o755,
			rt.File("empty", 0o644, nil),
			rt.File("passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")),
			rt.Hardlink("passwd-", "etc/passwd"),
		),
		rt.Dir("files", 0o755, rt.File("sparse", 0o600, sparse), owned, old,
			rt.File("zeros", 0o644, make([]byte, 1<<20))),
		locked, xdir, deep, names, rt.Dir("ro", 0o755, roFile, roDir, lockedX),
		rt.Dir("links", 0o755, lnk, rt.Symlink("rel", "../etc/passwd"), rt.Symlink("dangling", "nowhere/at/all"),
			rt.Hardlink("passwd3", "etc/passwd")),
		rt.Hardlink("zz", "files/owned"),
	)
	root.UID, root.GID, root.Mode = 0, 0, 0o755
	return root
}

// image builds a fixture with zstd frames and returns it opened.
func image(t testing.TB, root *rt.Node) (*reader.Image, *reader.ChunkReader) {
	t.Helper()
	return imageOf(t, rt.Image{Streams: rt.Encode(root), Encoding: format.EncodingZstd})
}

func imageOf(t testing.TB, ri rt.Image) (*reader.Image, *reader.ChunkReader) {
	t.Helper()
	img, cr, err := rt.Opened(t.Context(), ri)
	if err != nil {
		t.Fatal(err)
	}
	return img, cr
}

// sandbox is a temporary directory holding "dest" (not created) and an
// "outside" directory with a sentinel file; check fails the test when
// anything outside dest changed.
type sandbox struct {
	top, dest, outside string
	before             unpacktest.Snapshot
}

func newSandbox(t testing.TB) *sandbox {
	top := t.TempDir()
	s := &sandbox{top: top, dest: filepath.Join(top, "dest"), outside: filepath.Join(top, "outside")}
	if err := os.MkdirAll(filepath.Join(s.outside, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.outside, "etc", "passwd"), []byte("sentinel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if s.before, err = unpacktest.Take(s.outside); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *sandbox) check(t testing.TB) {
	t.Helper()
	after, err := unpacktest.Take(s.outside)
	if err != nil {
		t.Fatal(err)
	}
	if d := unpacktest.Diff(s.before, after, unpacktest.Options{}); len(d) > 0 {
		t.Errorf("outside dest changed:\n%s", strings.Join(d, "\n"))
	}
	ents, err := os.ReadDir(s.top)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "dest" && e.Name() != "outside" {
			t.Errorf("created outside dest: %s", e.Name())
		}
	}
	b, _ := os.ReadFile(filepath.Join(s.outside, "etc", "passwd"))
	if !bytes.Equal(b, []byte("sentinel\n")) {
		t.Errorf("sentinel changed: %q", b)
	}
}

// asRoot reports whether the test runs as root. Without root a test still
// runs but checks less (owners, privileged xattrs): it logs that, and under
// CI=true, where every check must run, it fails instead.
func asRoot(t testing.TB) bool {
	t.Helper()
	if os.Geteuid() == 0 {
		return true
	}
	if testenv.InCI() {
		t.Fatal("not root: owners and privileged xattrs would go unchecked (CI=true: prerequisites must be present)")
	}
	t.Log("not root: owners and privileged xattrs not checked")
	return false
}
