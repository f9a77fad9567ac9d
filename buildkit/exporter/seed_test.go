package exporter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	rt "github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/image/unpack"
	"github.com/oci2/oci2/image/writer"
)

// seedImage is an image with every entry type an unprivileged unpack can
// write: nested directories, files of several chunks, an empty file,
// hardlinks (one in another directory), symlinks, a fifo, user xattrs.
func seedImage(t *testing.T) (*reader.Image, *reader.ChunkReader) {
	t.Helper()
	big := rt.File("big", 0o640, randBytes(1, 300<<10))
	big.Xattrs = []format.Xattr{{Name: "user.k", Value: []byte("v")}}
	sub := rt.Dir("sub", 0o750, rt.File("c", 0o600, randBytes(2, 5000)), rt.Hardlink("big-link", "a/big"))
	sub.Xattrs = []format.Xattr{{Name: "user.dir", Value: []byte("d")}}
	root := rt.Dir("", 0o755,
		rt.Dir("a", 0o755, big, rt.Hardlink("big2", "a/big"), rt.File("empty", 0o644, nil), sub),
		rt.Dir("b", 0o1777, rt.Symlink("abs", "/a/big"), rt.Symlink("rel", "../a/sub/c"), rt.Fifo("fifo", 0o620)),
		rt.File("top", 0o4755, []byte("#!/bin/sh\n")),
	)
	img, cr, err := rt.Opened(t.Context(), rt.Image{Streams: rt.Encode(root), Encoding: format.EncodingZstd})
	if err != nil {
		t.Fatal(err)
	}
	return img, cr
}

// TestSeedEqualsWalk: the tree seeded from an image and the unpacked
// directory's lstats is exactly what a walk of the directory gives (so an
// export from it is a cold export's), and every regular file, hardlinks
// included, gets the image's extents under the key the walk's node has.
func TestSeedEqualsWalk(t *testing.T) {
	img, cr := seedImage(t)
	dir := filepath.Join(t.TempDir(), "rootfs")
	us, err := unpack.Unpack(t.Context(), img, cr, dir, unpack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if us.Skipped > 0 {
		t.Fatalf("the unpack skipped %d entries: the fixture is for complete unpacks", us.Skipped)
	}
	s, err := seedDir(t.Context(), dir, img, cr)
	if err != nil {
		t.Fatal(err)
	}
	walked, nodes := walkTree(t, dir)
	if diffs := diffTrees(s.root, walked, ""); len(diffs) > 0 {
		t.Errorf("seeded tree differs from the walk:\n%s", strings.Join(diffs, "\n"))
	}
	want := map[string][]format.Extent{}
	err = reader.Walk(t.Context(), cr, img.Root, reader.DefaultLimits, func(p string, e *format.Entry) error {
		switch e.Type {
		case format.TypeReg:
			want[p] = slices.Clone(e.Extents)
		case format.TypeHardlink:
			want[p] = want[e.Target]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for p, n := range nodes {
		if n.Size == 0 {
			continue
		}
		files++
		sf := n.Content.(*writer.SourceFile)
		k := fileKey{path: p, ino: sf.Ino, size: sf.Size, mtime: sf.MtimeNs, ctime: sf.CtimeNs}
		if got, ok := s.files[k]; !ok || !slices.Equal(got, want[p]) {
			t.Errorf("%s: seeded extents %v (found %v), want the image's %v", p, got, ok, want[p])
		}
	}
	if files != 5 || len(s.files) != files {
		t.Errorf("%d files seeded, %d walked; want the 5 non-empty ones (hardlinks included)", len(s.files), files)
	}
}

// A snapshot that differs from the image is not seeded.
func TestSeedMismatch(t *testing.T) {
	img, cr := seedImage(t)
	for name, change := range map[string]func(dir string) error{
		"mode":    func(dir string) error { return os.Chmod(filepath.Join(dir, "a", "sub", "c"), 0o644) },
		"missing": func(dir string) error { return os.Remove(filepath.Join(dir, "b", "fifo")) },
		"type": func(dir string) error {
			p := filepath.Join(dir, "b", "rel")
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.WriteFile(p, nil, 0o777)
		},
	} {
		dir := filepath.Join(t.TempDir(), "rootfs")
		if _, err := unpack.Unpack(t.Context(), img, cr, dir, unpack.Options{}); err != nil {
			t.Fatal(err)
		}
		if err := change(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := seedDir(t.Context(), dir, img, cr); !errors.Is(err, errSeedMismatch) {
			t.Errorf("%s changed after the unpack: err %v, want errSeedMismatch", name, err)
		}
	}
}

// diffTrees lists the differences between two trees, children by name,
// ignoring the time a walk read an entry (SourceFile.StatNs).
func diffTrees(a, b *writer.Node, p string) []string {
	var out []string
	ae, be := a.Entry, b.Entry
	ae.Xattrs, be.Xattrs = nil, nil
	if fmt.Sprint(ae) != fmt.Sprint(be) || fmt.Sprint(a.Xattrs) != fmt.Sprint(b.Xattrs) || a.Inode != b.Inode {
		out = append(out, fmt.Sprintf("%q: %+v inode %d, walk %+v inode %d", p, a.Entry, a.Inode, b.Entry, b.Inode))
	}
	as, aok := a.Content.(*writer.SourceFile)
	bs, bok := b.Content.(*writer.SourceFile)
	if aok != bok {
		out = append(out, fmt.Sprintf("%q: content %T, walk %T", p, a.Content, b.Content))
	} else if aok {
		x, y := *as, *bs
		x.StatNs, y.StatNs = 0, 0
		if x != y {
			out = append(out, fmt.Sprintf("%q: content %+v, walk %+v", p, x, y))
		}
	}
	kids := func(n *writer.Node) map[string]*writer.Node {
		m := map[string]*writer.Node{}
		for _, c := range n.Children {
			m[c.Name] = c
		}
		return m
	}
	ak, bk := kids(a), kids(b)
	for name, c := range ak {
		if d, ok := bk[name]; ok {
			out = append(out, diffTrees(c, d, p+"/"+name)...)
		} else {
			out = append(out, fmt.Sprintf("%q: seeded, not walked", p+"/"+name))
		}
	}
	for name := range bk {
		if _, ok := ak[name]; !ok {
			out = append(out, fmt.Sprintf("%q: walked, not seeded", p+"/"+name))
		}
	}
	return out
}
