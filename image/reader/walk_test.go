package reader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	rt "github.com/oci2/oci2/image/reader/readertest"
)

type visit struct {
	path string
	typ  format.EntryType
	post bool
}

func walkAll(t testing.TB, cr *reader.ChunkReader, root format.ChunkID, limits reader.Limits) ([]visit, error) {
	var got []visit
	err := reader.WalkPrePost(t.Context(), cr, root, limits,
		func(p string, e *format.Entry) error {
			got = append(got, visit{p, e.Type, false})
			return nil
		},
		func(p string, e *format.Entry) error {
			got = append(got, visit{p, e.Type, true})
			return nil
		})
	return got, err
}

func TestWalkOrder(t *testing.T) {
	_, img, cr := openFixture(t, sampleTree())
	got, err := walkAll(t, cr, img.Root, reader.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	D, R := format.TypeDir, format.TypeReg
	want := []visit{
		{"", D, false},
		{"big", R, false},
		{"bin", D, false}, {"bin/sh", R, false}, {"bin/sh2", format.TypeHardlink, false}, {"bin", D, true},
		{"etc", D, false}, {"etc/empty", R, false}, {"etc/passwd", R, false}, {"etc", D, true},
		{"fifo", format.TypeFifo, false},
		{"link", format.TypeSymlink, false},
		{"null", format.TypeChar, false},
		{"z", D, false}, {"z/empty", D, false}, {"z/empty", D, true}, {"z", D, true},
		{"", D, true},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("walk:\n got %v\nwant %v", got, want)
	}

	// Content round trip and SkipDir.
	var paths []string
	err = reader.Walk(t.Context(), cr, img.Root, reader.DefaultLimits, func(p string, e *format.Entry) error {
		paths = append(paths, p)
		if p == "big" {
			c := rt.Content(t, cr, e)
			if !bytes.Equal(c, sampleTree().Children[2].Content) || uint64(len(c)) != e.Size {
				t.Errorf("big: content differs")
			}
			if len(e.Extents) < 3 || !e.Extents[2].Zero {
				t.Errorf("big: extents %+v, want a zero extent", e.Extents)
			}
		}
		if p == "bin" || p == "z" {
			return reader.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if w := "[ big bin etc etc/empty etc/passwd fifo link null z]"; fmt.Sprint(paths) != w {
		t.Errorf("with SkipDir: %v, want %v", paths, w)
	}
}

func TestWalkHostile(t *testing.T) {
	file := func(name string) format.Entry {
		return format.Entry{Name: name, Type: format.TypeReg, Mode: 0o644}
	}
	tests := []struct {
		name   string
		root   *rt.Node
		target error
		subs   []string
	}{
		{name: "dotdot name", root: rawDir("d", file("ok"), file("..")),
			target: format.ErrInvalid, subs: []string{`"/d"`, "."}},
		{name: "dot name", root: rawDir("d", file(".")), target: format.ErrInvalid, subs: []string{`"/d"`}},
		{name: "slash name", root: rawDir("d", file("a/b")), target: format.ErrInvalid, subs: []string{`"/d"`, "/"}},
		{name: "NUL name", root: rawDir("d", file("a\x00b")), target: format.ErrInvalid, subs: []string{`"/d"`, "NUL"}},
		{name: "empty name", root: rawDir("d", file("")), target: format.ErrInvalid, subs: []string{`"/d"`}},
		{name: "long name", root: rawDir("d", file(strings.Repeat("x", 256))), target: format.ErrInvalid, subs: []string{`"/d"`}},
		{name: "unsorted", root: rawDir("d", file("b"), file("a")), target: format.ErrInvalid, subs: []string{`"/d"`, "sorted"}},
		{name: "duplicate", root: rawDir("d", file("a"), file("a")), target: format.ErrInvalid, subs: []string{`"/d"`, "duplicate"}},
		{name: "overlay xattr", root: rawDir("d", format.Entry{Name: "x", Type: format.TypeReg,
			Xattrs: []format.Xattr{{Name: "trusted.overlay.opaque", Value: []byte("y")}}}),
			target: format.ErrInvalid, subs: []string{`"/d"`}},
		{name: "size disagrees with extents", root: rt.Dir("", 0o755, rt.Dir("d", 0o755,
			&rt.Node{Entry: format.Entry{Name: "f", Type: format.TypeReg, Mode: 0o644, Size: 10}, Content: []byte("12345"), KeepSize: true})),
			target: format.ErrInvalid, subs: []string{`"/d"`}},
		{name: "hardlink dotdot", root: rt.Dir("", 0o755, rt.File("a", 0o644, nil), rt.Dir("d", 0o755, rt.Hardlink("h", "../a"))),
			target: format.ErrInvalid, subs: []string{`"/d"`}},
		{name: "hardlink absolute", root: rt.Dir("", 0o755, rt.File("a", 0o644, nil), rt.Hardlink("h", "/a")),
			target: format.ErrInvalid, subs: []string{`"/"`}},
		{name: "hardlink missing", root: rt.Dir("", 0o755, rt.File("a", 0o644, nil), rt.Hardlink("h", "b")),
			target: reader.ErrInvalidImage, subs: []string{`"/h"`, `"/b" does not exist`}},
		{name: "hardlink forward", root: rt.Dir("", 0o755, rt.Hardlink("a", "b"), rt.File("b", 0o644, nil)),
			target: reader.ErrInvalidImage, subs: []string{`"/a"`, `"/b" does not precede`}},
		{name: "hardlink to itself", root: rt.Dir("", 0o755, rt.Hardlink("a", "a")),
			target: reader.ErrInvalidImage, subs: []string{`"/a"`, "precede"}},
		{name: "hardlink to symlink", root: rt.Dir("", 0o755, rt.Symlink("a", "/etc/passwd"), rt.Hardlink("h", "a")),
			target: reader.ErrInvalidImage, subs: []string{`"/h"`, `"/a" is not a regular file`}},
		{name: "hardlink to dir", root: rt.Dir("", 0o755, rt.Dir("a", 0o755), rt.Hardlink("h", "a")),
			target: reader.ErrInvalidImage, subs: []string{`"/h"`, `"/a" is not a regular file`}},
		{name: "hardlink to hardlink", root: rt.Dir("", 0o755, rt.File("a", 0o644, nil), rt.Hardlink("b", "a"), rt.Hardlink("c", "b")),
			target: reader.ErrInvalidImage, subs: []string{`"/c"`, `"/b" is not a regular file`}},
		{name: "hardlink through symlink", root: rt.Dir("", 0o755, rt.Symlink("a", "/"), rt.Hardlink("h", "a/etc/passwd")),
			target: reader.ErrInvalidImage, subs: []string{`"/h"`, `"/a" is not a directory`}},
		{name: "hardlink through dotdot symlink", root: rt.Dir("", 0o755, rt.Symlink("a", "../../.."), rt.Hardlink("h", "a/x")),
			target: reader.ErrInvalidImage, subs: []string{`"/h"`, `"/a" is not a directory`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, img, cr := openFixture(t, tc.root)
			_, err := walkAll(t, cr, img.Root, reader.Limits{})
			wantErr(t, err, tc.target, tc.subs...)
		})
	}
}

// rawDir is a root holding directory name whose tree is entries verbatim.
func rawDir(name string, entries ...format.Entry) *rt.Node {
	d := rt.Dir(name, 0o755)
	d.RawTree = rt.RawTree(entries...)
	return rt.Dir("", 0o755, d)
}

func TestWalkRootWrapper(t *testing.T) {
	real := rt.RawTree()
	for name, wrapper := range map[string][]byte{
		"two entries": rt.RawTree(
			format.Entry{Name: "rootfs", Type: format.TypeDir, Tree: format.Sum(real)},
			format.Entry{Name: "x", Type: format.TypeDir, Tree: format.Sum(real)}),
		"wrong name": rt.RawTree(format.Entry{Name: "root", Type: format.TypeDir, Tree: format.Sum(real)}),
		"not a dir":  rt.RawTree(format.Entry{Name: "rootfs", Type: format.TypeReg}),
	} {
		t.Run(name, func(t *testing.T) {
			s := rt.Streams{Root: format.Sum(wrapper), Trees: [][]byte{wrapper, real}}
			st, desc := build(t, rt.Image{Streams: s})
			img, err := reader.Open(t.Context(), st, desc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = walkAll(t, reader.NewChunkReader(img, reader.LocalFrames(st)), img.Root, reader.Limits{})
			wantErr(t, err, reader.ErrInvalidImage, "root wrapper")
		})
	}
}

func TestWalkLimits(t *testing.T) {
	open := func(s rt.Streams) (*reader.Image, *reader.ChunkReader) {
		st, desc := build(t, rt.Image{Streams: s, ChunksPerFrame: 64})
		img, err := reader.Open(t.Context(), st, desc)
		if err != nil {
			t.Fatal(err)
		}
		return img, reader.NewChunkReader(img, reader.LocalFrames(st))
	}
	count := func(img *reader.Image, cr *reader.ChunkReader, l reader.Limits) (int64, error) {
		var n int64
		err := reader.Walk(t.Context(), cr, img.Root, l, func(string, *format.Entry) error { n++; return nil })
		return n, err
	}

	img, cr := open(rt.Bomb(64))
	n, err := count(img, cr, reader.Limits{MaxEntries: 100000})
	wantErr(t, err, reader.ErrLimit, "more than 100000 entries")
	if n != 100000 { // the root wrapper's entry counts too
		t.Errorf("visited %d entries before the limit", n)
	}
	small, scr := open(rt.Bomb(9)) // 2^10 - 2 entries + the root
	if n, err := count(small, scr, reader.Limits{MaxEntries: 1023}); err != nil || n != 1023 {
		t.Errorf("bomb(9) under its exact limit: %d entries, %v", n, err)
	}
	_, err = count(small, scr, reader.Limits{MaxEntries: 1022})
	wantErr(t, err, reader.ErrLimit)

	// Depth: a chain of nested directories.
	chain := func(depth int) rt.Streams {
		t := rt.RawTree()
		trees := [][]byte{t}
		for i := 0; i < depth; i++ {
			t = rt.RawTree(format.Entry{Name: "d", Type: format.TypeDir, Mode: 0o755, Tree: format.Sum(t)})
			trees = append(trees, t)
		}
		w := rt.Wrapper(format.Sum(t), format.Entry{Mode: 0o755})
		s := rt.Streams{Root: format.Sum(w), Trees: [][]byte{w}}
		for i := len(trees) - 1; i >= 0; i-- {
			s.Trees = append(s.Trees, trees[i])
		}
		return s
	}
	img, cr = open(chain(1024))
	if n, err := count(img, cr, reader.Limits{}); err != nil || n != 1025 {
		t.Errorf("depth 1024: %d entries, %v", n, err)
	}
	img, cr = open(chain(1025))
	_, err = count(img, cr, reader.Limits{})
	wantErr(t, err, reader.ErrLimit, "deeper than 1024")
	_, err = count(img, cr, reader.Limits{MaxDepth: 10})
	wantErr(t, err, reader.ErrLimit, `"/d/d/d/d/d/d/d/d/d/d/d"`, "deeper than 10")

	// Bytes: a 2 TiB file of one zero extent.
	huge := &rt.Node{Entry: format.Entry{Name: "huge", Type: format.TypeReg, Mode: 0o644, Size: 2 << 40,
		Extents: []format.Extent{{Zero: true, Length: 2 << 40}}}, KeepSize: true}
	_, img2, cr2 := openFixture(t, rt.Dir("", 0o755, rt.File("a", 0o644, []byte("x")), huge))
	_, err = count(img2, cr2, reader.Limits{})
	wantErr(t, err, reader.ErrLimit, `"/huge"`, "bytes")
	if _, err := count(img2, cr2, reader.Limits{MaxBytes: 3 << 40}); err != nil {
		t.Errorf("with a 3 TiB limit: %v", err)
	}
}

func TestWalkCallbackErrorsAndCancel(t *testing.T) {
	_, img, cr := openFixture(t, sampleTree())
	boom := errors.New("boom")
	err := reader.Walk(t.Context(), cr, img.Root, reader.Limits{}, func(p string, e *format.Entry) error {
		if p == "etc/passwd" {
			return boom
		}
		return nil
	})
	if err != boom {
		t.Errorf("callback error came back as %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = reader.Walk(ctx, cr, img.Root, reader.Limits{}, func(string, *format.Entry) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled walk: %v", err)
	}
}
