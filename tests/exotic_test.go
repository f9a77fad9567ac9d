package tests

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// treeBuilder makes entries under root and applies metadata in the order
// that keeps it: chown, chmod, xattrs (security.capability last), then
// mtimes, directories after their contents.
type treeBuilder struct {
	t     testing.TB
	root  string
	rng   *rand.Rand
	clock int64 // next mtime (ns since the epoch)
	dirs  []string
	times map[string]int64
}

func newTreeBuilder(t testing.TB, root string, seed uint64) *treeBuilder {
	return &treeBuilder{
		t: t, root: root, rng: rand.New(rand.NewPCG(seed, 0x6f636932)),
		clock: 1_600_000_000_123_456_789, times: map[string]int64{},
	}
}

func (b *treeBuilder) path(rel string) string { return filepath.Join(b.root, rel) }

func (b *treeBuilder) check(err error, what, rel string) {
	b.t.Helper()
	if err != nil {
		b.t.Fatalf("building tree: %s %q: %v", what, rel, err)
	}
}

// tick returns a fresh nanosecond mtime.
func (b *treeBuilder) tick() int64 {
	b.clock += 1_000_000_007 + int64(b.rng.IntN(1_000_000))
	return b.clock
}

func (b *treeBuilder) random(n int) []byte {
	buf := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], b.rng.Uint64())
	}
	for i := n &^ 7; i < n; i++ {
		buf[i] = byte(b.rng.Uint32() | 1)
	}
	return buf
}

// dir creates a directory (and its parents with mode 0755).
func (b *treeBuilder) dir(rel string, mode uint32, uid, gid int) {
	b.t.Helper()
	b.check(os.MkdirAll(b.path(rel), 0o755), "mkdir", rel)
	b.meta(rel, mode, uid, gid)
	b.dirs = append(b.dirs, rel)
}

// file writes a regular file.
func (b *treeBuilder) file(rel string, data []byte, mode uint32, uid, gid int) {
	b.t.Helper()
	b.check(os.WriteFile(b.path(rel), data, 0o600), "write", rel)
	b.meta(rel, mode, uid, gid)
}

// meta sets owner then mode (chown clears setuid/setgid) and records an mtime.
func (b *treeBuilder) meta(rel string, mode uint32, uid, gid int) {
	b.t.Helper()
	p := b.path(rel)
	b.check(os.Lchown(p, uid, gid), "chown", rel)
	b.check(unix.Fchmodat(unix.AT_FDCWD, p, mode, 0), "chmod", rel)
	b.times[rel] = b.tick()
}

func (b *treeBuilder) symlink(rel, target string, uid, gid int) {
	b.t.Helper()
	b.check(os.Symlink(target, b.path(rel)), "symlink", rel)
	b.check(os.Lchown(b.path(rel), uid, gid), "lchown", rel)
	b.times[rel] = b.tick()
}

func (b *treeBuilder) mknod(rel string, typ, mode uint32, major, minor uint32, uid, gid int) {
	b.t.Helper()
	b.check(unix.Mknod(b.path(rel), typ|0o600, int(unix.Mkdev(major, minor))), "mknod", rel)
	b.meta(rel, mode, uid, gid)
}

func (b *treeBuilder) xattr(rel, name string, value []byte) {
	b.t.Helper()
	b.check(unix.Lsetxattr(b.path(rel), name, value, 0), "setxattr "+name, rel)
}

func (b *treeBuilder) link(oldRel, newRel string) {
	b.t.Helper()
	b.check(os.Link(b.path(oldRel), b.path(newRel)), "link", newRel)
}

// setTime overrides an entry's recorded mtime.
func (b *treeBuilder) setTime(rel string, ns int64) { b.times[rel] = ns }

// finish applies all mtimes, deepest directories last-but-contents-first.
func (b *treeBuilder) finish() {
	b.t.Helper()
	var files, dirs []string
	isDir := map[string]bool{}
	for _, d := range b.dirs {
		isDir[d] = true
	}
	for rel := range b.times {
		if isDir[rel] {
			dirs = append(dirs, rel)
		} else {
			files = append(files, rel)
		}
	}
	sort.Strings(files)
	// deepest first, so setting a child never touches a parent set before
	sort.Slice(dirs, func(i, j int) bool {
		ci, cj := strings.Count(dirs[i], "/"), strings.Count(dirs[j], "/")
		if ci != cj {
			return ci > cj
		}
		return dirs[i] < dirs[j]
	})
	for _, rel := range append(files, dirs...) {
		ns := b.times[rel]
		ts := []unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
		b.check(unix.UtimesNanoAt(unix.AT_FDCWD, b.path(rel), ts, unix.AT_SYMLINK_NOFOLLOW), "utimes", rel)
	}
}

// sparse creates a file of size bytes with random data at the given
// 4 KiB-aligned extents and holes everywhere else.
func (b *treeBuilder) sparse(rel string, size int64, data []extent, mode uint32) {
	b.t.Helper()
	f, err := os.OpenFile(b.path(rel), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	b.check(err, "create", rel)
	for _, e := range data {
		_, err := f.WriteAt(b.random(int(e.Len)), e.Off)
		b.check(err, "write", rel)
	}
	b.check(f.Truncate(size), "truncate", rel)
	b.check(f.Close(), "close", rel)
	b.meta(rel, mode, 0, 0)
}

// capV2 is a security.capability value (VFS_CAP_REVISION_2, effective)
// granting CAP_NET_BIND_SERVICE and CAP_NET_RAW permitted.
func capV2() []byte {
	v := make([]byte, 20)
	binary.LittleEndian.PutUint32(v[0:], 0x02000000|1)
	binary.LittleEndian.PutUint32(v[4:], 1<<10|1<<13) // permitted
	return v
}

const (
	gib        = int64(1) << 30
	hugeSparse = 8 * gib
)

// buildExotic makes a tree with every kind of entry and metadata the format
// must keep. Needs root (devices, ownership, trusted.* xattrs).
func buildExotic(t testing.TB, root string) {
	b := newTreeBuilder(t, root, 1)
	b.dir(".", 0o755, 0, 0)

	// regular files: small, empty, multi-chunk, duplicated content
	b.dir("files", 0o755, 0, 0)
	b.file("files/hello.txt", []byte("hello, oci2\n"), 0o644, 0, 0)
	b.file("files/empty", nil, 0o600, 0, 0)
	big := b.random(3<<20 + 12345)
	b.file("files/big.bin", big, 0o640, 1000, 1000)
	b.file("files/big-copy.bin", big, 0o644, 0, 0)
	b.file("files/small-zeros", make([]byte, 10000), 0o644, 0, 0) // zeros below the zero-run minimum

	// sparse: an 8 GiB file with holes, a trailing hole, an all-hole file
	b.dir("sparse", 0o755, 0, 0)
	b.sparse("sparse/huge", hugeSparse, []extent{
		{0, 4096}, {gib, 100 << 10}, {3*gib + 4096*5, 64 << 10}, {hugeSparse - 8192, 8192},
	}, 0o644)
	b.sparse("sparse/tail-hole", 64<<20, []extent{{0, 1 << 20}}, 0o644)
	b.sparse("sparse/all-hole", 16<<20, nil, 0o644)
	// a final partial block is always data (SPEC.md §3), so it holds data here
	b.sparse("sparse/odd-size", 5<<20+123, []extent{{2 << 20, 256 << 10}, {5 << 20, 123}}, 0o644)

	// hardlinks: one inode under three names in two directories
	b.dir("links", 0o755, 0, 0)
	b.file("links/a", []byte("linked content\n"), 0o640, 42, 43)
	b.link("links/a", "links/b")
	b.link("links/a", "files/c-link-to-a")
	b.file("links/empty-a", nil, 0o644, 0, 0)
	b.link("links/empty-a", "links/empty-b")

	// symlinks: relative, absolute, dangling, outside, long, owned
	b.dir("sym", 0o755, 0, 0)
	b.symlink("sym/relative", "../files/hello.txt", 0, 0)
	b.symlink("sym/absolute", "/files/hello.txt", 0, 0)
	b.symlink("sym/dangling", "does/not/exist", 0, 0)
	b.symlink("sym/outside", "../../../../../etc/passwd", 0, 0)
	b.symlink("sym/dir", "../files", 0, 0)
	b.symlink("sym/owned", "x", 1234, 5678)
	b.symlink("sym/long", strings.Repeat("long/", 800)+"end", 0, 0)

	// special files
	b.dir("dev", 0o755, 0, 0)
	b.mknod("dev/fifo", unix.S_IFIFO, 0o620, 0, 0, 0, 0)
	b.mknod("dev/null", unix.S_IFCHR, 0o666, 1, 3, 0, 0)
	b.mknod("dev/loop0", unix.S_IFBLK, 0o660, 7, 0, 0, 6)
	b.mknod("dev/big-numbers", unix.S_IFCHR, 0o600, 4095, 1048575, 0, 0)

	// odd directory modes (with contents)
	b.dir("modes", 0o755, 0, 0)
	for _, m := range []struct {
		name string
		mode uint32
	}{{"none", 0}, {"readonly", 0o555}, {"sticky", 0o1777}, {"setgid", 0o2775}, {"private", 0o700}, {"exec-only", 0o111}} {
		b.dir("modes/"+m.name, 0o755, 0, 0)
		b.file("modes/"+m.name+"/f", []byte(m.name), 0o644, 0, 0)
		b.meta("modes/"+m.name, m.mode, 0, 0)
	}

	// setuid/setgid files, file capabilities, xattrs
	b.dir("bin", 0o755, 0, 0)
	b.file("bin/setuid", b.random(5000), 0o4755, 1000, 1000)
	b.file("bin/setgid", b.random(5000), 0o2755, 0, 50)
	b.file("bin/both", b.random(5000), 0o6711, 7, 7)
	b.file("bin/ping", b.random(7000), 0o755, 0, 0)
	b.xattr("bin/ping", "security.capability", capV2())
	b.file("files/xattrs", []byte("x"), 0o644, 0, 0)
	b.xattr("files/xattrs", "user.empty", nil)
	b.xattr("files/xattrs", "user.text", []byte("value"))
	b.xattr("files/xattrs", "user.binary", []byte{0, 1, 2, 0xff, 0})
	b.xattr("files/xattrs", "user."+strings.Repeat("k", 200), b.random(3000))
	b.xattr("files/xattrs", "trusted.oci2-test", []byte("t"))
	b.xattr("files", "user.on-a-dir", []byte("d"))
	b.xattr("sym/owned", "trusted.on-a-symlink", []byte("s"))

	// names
	b.dir("names", 0o755, 0, 0)
	for _, name := range []string{
		"with space", "new\nline", "tab\there", "non-utf8-\xff\xfe\x80", "ünïcödé",
		strings.Repeat("n", 255), "-leading-dash", " leading space", "trailing space ",
		"back\\slash", "quote\"'`", "*?[glob]", ".hidden", "..dots", "...",
	} {
		b.file("names/"+name, []byte(name), 0o644, 0, 0)
	}
	b.dir("names/"+strings.Repeat("d", 255), 0o755, 0, 0)

	// deep nesting
	deep := "deep"
	b.dir(deep, 0o755, 0, 0)
	for i := range 130 {
		deep = filepath.Join(deep, string(rune('a'+i%26)))
		b.dir(deep, 0o755, 0, 0)
	}
	b.file(filepath.Join(deep, "bottom"), []byte("bottom\n"), 0o644, 0, 0)

	// large ids, odd mtimes
	b.dir("ids", 0o755, 0, 0)
	b.file("ids/big-uid", []byte("uid"), 0o644, 4000000000, 4000000001)
	b.dir("ids/big-uid-dir", 0o750, 4000000000, 4000000001)
	b.file("ids/pre-1970", []byte("old"), 0o644, 0, 0)
	b.setTime("ids/pre-1970", -86400*365*10*1_000_000_000+123)
	b.file("ids/year-2100", []byte("future"), 0o644, 0, 0)
	b.setTime("ids/year-2100", 4102444800*1_000_000_000+999_999_999)
	b.file("ids/whole-second", []byte("s"), 0o644, 0, 0)
	b.setTime("ids/whole-second", 1_700_000_000*1_000_000_000)

	b.finish()
}
