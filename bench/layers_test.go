package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// TestLayerDiff: a derived layer holds new and changed entries with their
// parent directories, and whiteouts for deleted ones; unchanged entries
// stay in the base layer only.
func TestLayerDiff(t *testing.T) {
	base, child := t.TempDir(), t.TempDir()
	when := time.Unix(1700000000, 0)
	write := func(root, rel, data string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, when, when)
	}
	for _, root := range []string{base, child} {
		write(root, "etc/same", "same")
		write(root, "etc/changed", "v1")
		write(root, "usr/lib/keep", "keep")
		write(root, "gone/file", "x")
	}
	write(child, "etc/changed", "v2-longer")
	write(child, "usr/new/file", "new")
	os.RemoveAll(filepath.Join(child, "gone"))
	// directories keep their mtimes where nothing changed
	for _, d := range []string{"usr", "usr/lib", "etc", "."} {
		os.Chtimes(filepath.Join(base, d), when, when)
		os.Chtimes(filepath.Join(child, d), when, when)
	}
	os.Chtimes(filepath.Join(child, "etc"), when.Add(time.Hour), when.Add(time.Hour))

	var buf bytes.Buffer
	id, n, err := writeLayerTar(layer{Key: "t", Parent: base, Dir: child}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || len(id) != 71 {
		t.Errorf("diff id %q, size %d of %d", id, n, buf.Len())
	}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	sort.Strings(names)
	want := []string{"./", ".wh.gone", "etc/", "etc/changed", "usr/", "usr/new/", "usr/new/file"}
	if len(names) != len(want) {
		t.Fatalf("layer entries %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("layer entries %q, want %q", names, want)
		}
	}
}
