package unpack_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	rt "github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/image/unpack"
	"github.com/oci2/oci2/image/unpack/unpacktest"
	"github.com/oci2/oci2/internal/testenv"
)

func TestUnpackFixture(t *testing.T) {
	testenv.RequireRoot(t, "devices, owners, trusted.* xattrs")
	root := richTree()
	img, cr := image(t, root)
	sb := newSandbox(t)
	var mu sync.Mutex
	var last unpack.Progress
	calls := 0
	st, err := unpack.Unpack(t.Context(), img, cr, sb.dest, unpack.Options{
		Workers: 3,
		Progress: func(p unpack.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if p.Entries < last.Entries || p.Bytes < last.Bytes {
				t.Errorf("progress went back: %+v after %+v", p, last)
			}
			last = p
			calls++
		},
		Warn: func(p string, err error) { t.Errorf("warning %s: %v", p, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := unpacktest.Take(sb.dest)
	if err != nil {
		t.Fatal(err)
	}
	want := unpacktest.FromNode(root)
	if d := unpacktest.Diff(want, got, unpacktest.Options{}); len(d) > 0 {
		t.Errorf("unpacked tree differs:\n%s", strings.Join(d, "\n"))
	}
	// Holes stay holes: only the data regions are allocated.
	sp := got["files/sparse"]
	if want := int64(100<<10+8<<10) / 512; sp.Blocks != want {
		t.Errorf("sparse file: %d blocks allocated, want %d", sp.Blocks, want)
	}
	if z := got["files/zeros"]; z.Blocks != 0 {
		t.Errorf("file of zeros: %d blocks allocated, want 0", z.Blocks)
	}
	if st.Entries != int64(len(want)) || st.Hardlinks != 4 || st.Devices != 2 || st.Fifos != 1 ||
		st.Symlinks != 3 || st.Skipped != 0 {
		t.Errorf("stats %+v (want %d entries)", st, len(want))
	}
	if calls < 2 || last.Entries != st.Entries || last.Bytes != st.Bytes ||
		last.EntriesTotal != st.Entries || last.BytesTotal != st.Bytes {
		t.Errorf("last progress %+v after %d calls, stats %+v", last, calls, st)
	}
	fi, err := os.Stat(sb.dest)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("dest mode: %v %v", fi.Mode(), err)
	}
	sb.check(t)
}

func TestUnpackUnprivilegedMode(t *testing.T) {
	root := richTree()
	img, cr := image(t, root)
	sb := newSandbox(t)
	var warns []string
	st, err := unpack.Unpack(t.Context(), img, cr, sb.dest, unpack.Options{
		Unprivileged: true,
		Warn:         func(p string, err error) { warns = append(warns, p+": "+err.Error()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := unpacktest.Take(sb.dest)
	if err != nil {
		t.Fatal(err)
	}
	want := unprivilegedWant(root)
	opts := unpacktest.Options{IgnoreOwners: !asRoot(t)}
	if d := unpacktest.Diff(want, got, opts); len(d) > 0 {
		t.Errorf("unpacked tree differs:\n%s", strings.Join(d, "\n"))
	}
	w := strings.Join(warns, "\n")
	for _, s := range []string{"/dev/null: device node 1:3 skipped", "/dev/sda: device node 8:0 skipped",
		`xattr "security.capability" skipped`, `xattr "trusted.md5" skipped`} {
		if !strings.Contains(w, s) {
			t.Errorf("warnings do not mention %q:\n%s", s, w)
		}
	}
	if st.Skipped < 4 || st.Devices != 0 {
		t.Errorf("stats %+v", st)
	}
	sb.check(t)
}

func TestUnpackDest(t *testing.T) {
	img, cr := image(t, rt.Dir("", 0o751, rt.Dir("etc", 0o755, rt.File("passwd", 0o644, []byte("image\n"))),
		rt.Dir("bin", 0o755, rt.File("sh", 0o755, []byte("image sh")), rt.Hardlink("sh2", "bin/sh"))))
	ctx := t.Context()

	t.Run("not empty", func(t *testing.T) {
		sb := newSandbox(t)
		os.Mkdir(sb.dest, 0o755)
		os.WriteFile(filepath.Join(sb.dest, "x"), nil, 0o644)
		_, err := unpack.Unpack(ctx, img, cr, sb.dest, unpack.Options{})
		if !errors.Is(err, unpack.ErrNotEmpty) || !strings.Contains(err.Error(), sb.dest) {
			t.Errorf("unpack into non-empty dest: %v", err)
		}
		if _, err := os.Stat(filepath.Join(sb.dest, "etc")); err == nil {
			t.Errorf("wrote into a non-empty dest")
		}
		if _, err := unpack.Unpack(ctx, img, cr, sb.dest, unpack.Options{Force: true}); err != nil {
			t.Errorf("with Force: %v", err)
		}
		if _, err := os.Stat(filepath.Join(sb.dest, "x")); err != nil {
			t.Errorf("Force removed an unrelated entry: %v", err)
		}
		sb.check(t)
	})
	t.Run("empty existing", func(t *testing.T) {
		sb := newSandbox(t)
		os.Mkdir(sb.dest, 0o700)
		if _, err := unpack.Unpack(ctx, img, cr, sb.dest, unpack.Options{}); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(sb.dest); fi.Mode().Perm() != 0o751 {
			t.Errorf("root mode %v, want 0751", fi.Mode())
		}
	})
	t.Run("dest is a symlink", func(t *testing.T) {
		sb := newSandbox(t)
		os.Symlink(sb.outside, sb.dest)
		_, err := unpack.Unpack(ctx, img, cr, sb.dest, unpack.Options{Force: true})
		if err == nil || !strings.Contains(err.Error(), "is a symlink") {
			t.Errorf("unpack into a symlink: %v", err)
		}
		os.Remove(sb.dest)
		sb.check(t)
	})
	t.Run("dest is a file", func(t *testing.T) {
		sb := newSandbox(t)
		os.WriteFile(sb.dest, nil, 0o644)
		_, err := unpack.Unpack(ctx, img, cr, sb.dest, unpack.Options{Force: true})
		if err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("unpack into a file: %v", err)
		}
		os.Remove(sb.dest)
		sb.check(t)
	})
	t.Run("force over symlinks and hardlinks to outside", func(t *testing.T) {
		sb := newSandbox(t)
		os.Mkdir(sb.dest, 0o755)
		// dest/etc -> outside/etc; dest/bin/sh is the outside passwd's inode.
		os.Symlink(filepath.Join(sb.outside, "etc"), filepath.Join(sb.dest, "etc"))
		os.Mkdir(filepath.Join(sb.dest, "bin"), 0o755)
		os.Link(filepath.Join(sb.outside, "etc", "passwd"), filepath.Join(sb.dest, "bin", "sh"))
		// dest/bin/sh2 is a directory holding a symlink out; the image has none.
		os.MkdirAll(filepath.Join(sb.dest, "bin", "sh2", "x"), 0o755)
		os.Symlink(sb.outside, filepath.Join(sb.dest, "bin", "sh2", "x", "out"))
		sb.before, _ = unpacktest.Take(sb.outside) // the link count changed
		if _, err := unpack.Unpack(ctx, img, cr, sb.dest, unpack.Options{Force: true}); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(filepath.Join(sb.dest, "etc")); err != nil || !fi.IsDir() {
			t.Errorf("dest/etc: %v %v", fi, err)
		}
		for p, want := range map[string]string{"etc/passwd": "image\n", "bin/sh": "image sh", "bin/sh2": "image sh"} {
			if b, _ := os.ReadFile(filepath.Join(sb.dest, p)); string(b) != want {
				t.Errorf("%s = %q", p, b)
			}
		}
		sb.check(t)
	})
}

func TestUnpackHostile(t *testing.T) {
	file := func(name string) format.Entry { return format.Entry{Name: name, Type: format.TypeReg, Mode: 0o644} }
	raw := func(entries ...format.Entry) *rt.Node {
		d := rt.Dir("d", 0o755)
		d.RawTree = rt.RawTree(entries...)
		return rt.Dir("", 0o755, rt.File("a", 0o644, []byte("first")), d)
	}
	content := []byte(strings.Repeat("compressible content ", 3000))
	fileRoot := func() *rt.Node {
		return rt.Dir("", 0o755, rt.Dir("x", 0o755, rt.File("f", 0o644, content)))
	}
	dataEdit := func(edit func(f *format.Frame, b []byte) []byte) func(bool, int, *format.Frame, []byte) []byte {
		return func(tree bool, i int, f *format.Frame, b []byte) []byte {
			if tree {
				return b
			}
			return edit(f, b)
		}
	}
	bomb := rt.EncodeZstdStream(make([]byte, 64<<20))
	tests := []struct {
		name   string
		img    rt.Image
		limits reader.Limits
		target error
		subs   []string
		data   bool // found while writing files (else before anything is written)
	}{
		{name: "dotdot name", img: rt.Image{Streams: rt.Encode(raw(file("..")))}, target: format.ErrInvalid, subs: []string{`"/d"`}},
		{name: "slash name", img: rt.Image{Streams: rt.Encode(raw(file("../../outside/etc/passwd")))}, target: format.ErrInvalid, subs: []string{`"/d"`}},
		{name: "NUL name", img: rt.Image{Streams: rt.Encode(raw(file("a\x00b")))}, target: format.ErrInvalid, subs: []string{`"/d"`}},
		{name: "unsorted", img: rt.Image{Streams: rt.Encode(raw(file("b"), file("a")))}, target: format.ErrInvalid, subs: []string{`"/d"`}},
		{name: "duplicate", img: rt.Image{Streams: rt.Encode(raw(file("a"), file("a")))}, target: format.ErrInvalid, subs: []string{`"/d"`}},
		{name: "setuid file of uid (uid_t)-1", img: rt.Image{Streams: rt.Encode(raw(format.Entry{Name: "su", Type: format.TypeReg, Mode: 0o4755, UID: format.NoOwner}))},
			target: format.ErrInvalid, subs: []string{`"/d"`, "uid 4294967295 is (uid_t)-1"}},
		{name: "setgid fifo of gid (gid_t)-1", img: rt.Image{Streams: rt.Encode(raw(format.Entry{Name: "sg", Type: format.TypeFifo, Mode: 0o2755, GID: format.NoOwner}))},
			target: format.ErrInvalid, subs: []string{`"/d"`, "gid 4294967295 is (gid_t)-1"}},
		{name: "hardlink outside", img: rt.Image{Streams: rt.Encode(rt.Dir("", 0o755, rt.Hardlink("h", "../outside/etc/passwd")))},
			target: format.ErrInvalid},
		{name: "hardlink missing", img: rt.Image{Streams: rt.Encode(rt.Dir("", 0o755, rt.File("a", 0o644, nil), rt.Hardlink("h", "b")))},
			target: reader.ErrInvalidImage, subs: []string{`"/h"`, `"/b"`}},
		{name: "hardlink to symlink", img: rt.Image{Streams: rt.Encode(rt.Dir("", 0o755,
			rt.Symlink("a", "../outside/etc/passwd"), rt.Hardlink("h", "a")))},
			target: reader.ErrInvalidImage, subs: []string{`"/h"`, `"/a" is not a regular file`}},
		{name: "write through symlink to root", img: rt.Image{Streams: rt.Encode(rt.Dir("", 0o755,
			rt.Symlink("a", "/"), rt.Hardlink("h", "a/etc/passwd")))},
			target: reader.ErrInvalidImage, subs: []string{`"/h"`, `"/a" is not a directory`}},
		{name: "write through symlink up", img: rt.Image{Streams: rt.Encode(rt.Dir("", 0o755,
			rt.Symlink("a", "../../.."), rt.Hardlink("h", "a/outside/etc/passwd")))},
			target: reader.ErrInvalidImage, subs: []string{`"/h"`, `"/a" is not a directory`}},
		{name: "size disagrees", img: rt.Image{Streams: rt.Encode(rt.Dir("", 0o755, rt.Dir("x", 0o755,
			&rt.Node{Entry: format.Entry{Name: "f", Type: format.TypeReg, Mode: 0o644, Size: 1 << 20}, Content: content, KeepSize: true})))},
			target: format.ErrInvalid, subs: []string{`"/x"`}},
		{name: "chunk digest mismatch", data: true, img: rt.Image{Streams: rt.Encode(fileRoot()), EditFrame: dataEdit(func(f *format.Frame, b []byte) []byte {
			b = append([]byte(nil), b...)
			b[10] ^= 1
			f.Digest = format.Sum(b) // a consistent frame of the wrong bytes
			return b
		})}, target: nil, subs: []string{`"/x/f"`, "hash to"}},
		{name: "frame digest mismatch", data: true, img: rt.Image{Streams: rt.Encode(fileRoot()), EditFrame: dataEdit(func(f *format.Frame, b []byte) []byte {
			b = append([]byte(nil), b...)
			b[10] ^= 1
			return b
		})}, subs: []string{`"/x/f"`, "digest mismatch"}},
		{name: "truncated frame", data: true, img: rt.Image{Streams: rt.Encode(fileRoot()), Encoding: format.EncodingZstd,
			EditFrame: dataEdit(func(f *format.Frame, b []byte) []byte {
				b = b[:len(b)-5]
				f.StoredSize, f.Digest = uint64(len(b)), format.Sum(b)
				return b
			})}, target: format.ErrInvalid, subs: []string{`"/x/f"`}},
		{name: "zstd bomb", data: true, img: rt.Image{Streams: rt.Encode(fileRoot()), Encoding: format.EncodingZstd,
			EditFrame: dataEdit(func(f *format.Frame, b []byte) []byte {
				f.StoredSize, f.Digest = uint64(len(bomb)), format.Sum(bomb)
				return bomb
			})}, target: format.ErrInvalid, subs: []string{`"/x/f"`, "bomb"}},
		{name: "metadata bomb", img: rt.Image{Streams: rt.Bomb(64), ChunksPerFrame: 64},
			limits: reader.Limits{MaxEntries: 1000}, target: reader.ErrLimit, subs: []string{"more than 1000 entries"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, cr := imageOf(t, tc.img)
			sb := newSandbox(t)
			_, err := unpack.Unpack(t.Context(), img, cr, sb.dest, unpack.Options{Limits: tc.limits})
			if err == nil {
				t.Fatal("unpack succeeded")
			}
			if tc.target != nil && !errors.Is(err, tc.target) {
				t.Errorf("error %q is not %q", err, tc.target)
			}
			for _, s := range tc.subs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if _, err := os.Lstat(sb.dest); !tc.data && err == nil {
				t.Errorf("dest created for an invalid tree")
			}
			sb.check(t)
		})
	}
}
