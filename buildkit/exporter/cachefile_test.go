package exporter

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/oci2/oci2/format"
)

func TestFileCacheSaveLoad(t *testing.T) {
	c := NewSnapshotFileCache(0)
	k := fileKey{path: "usr/bin/x", ino: 42, size: 70000, mtime: 1, ctime: 2}
	ext := []format.Extent{{Length: 65536, Chunk: format.Sum([]byte("a"))}, {Length: 4464, Chunk: format.Sum([]byte("b"))}}
	c.add(map[fileKey][]format.Extent{k: ext})
	if !c.Dirty() {
		t.Fatal("cache not dirty after add")
	}
	p := filepath.Join(t.TempDir(), "sub", "cache")
	if err := c.Save(p); err != nil {
		t.Fatal(err)
	}
	if c.Dirty() {
		t.Error("cache dirty after save")
	}
	l, err := LoadSnapshotFileCache(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := l.get(k)
	if !ok || len(got) != 2 || got[0] != ext[0] || got[1] != ext[1] {
		t.Errorf("loaded %v, %v; want %v", got, ok, ext)
	}
	if _, ok := l.get(fileKey{path: "usr/bin/x", ino: 42, size: 70000, mtime: 1, ctime: 3}); ok {
		t.Error("a changed ctime hit the cache")
	}

	// one flipped byte: the whole file is refused, nothing is trusted
	b, _ := os.ReadFile(p)
	b[len(cacheFileMagic)+10] ^= 1
	os.WriteFile(p, b, 0o600)
	l, err = LoadSnapshotFileCache(p, 0)
	if err == nil || l.Len() != 0 {
		t.Errorf("damaged cache: %d entries, error %v", l.Len(), err)
	}
	if l, err := LoadSnapshotFileCache(filepath.Join(t.TempDir(), "missing"), 0); err != nil || l.Len() != 0 {
		t.Errorf("missing cache: %d entries, error %v", l.Len(), err)
	}
}

func TestFileCacheBound(t *testing.T) {
	c := NewSnapshotFileCache(100)
	for g := range 5 {
		m := map[fileKey][]format.Extent{}
		for i := range 40 {
			m[fileKey{path: "f", ino: uint64(g*1000 + i)}] = []format.Extent{{Length: 1}}
		}
		c.add(m)
	}
	if n := c.Len(); n > 100 {
		t.Errorf("cache holds %d entries, bound 100", n)
	}
	// the newest export's entries are kept
	if _, ok := c.get(fileKey{path: "f", ino: 4000}); !ok {
		t.Error("newest entry dropped")
	}
}

// TestFileCacheCandidate: level 2 (path, size) follows the newest entry
// through add, trim, Save and LoadSnapshotFileCache.
func TestFileCacheCandidate(t *testing.T) {
	c := NewSnapshotFileCache(100)
	ext := func(s string) []format.Extent {
		return []format.Extent{{Length: 70000, Chunk: format.Sum([]byte(s))}}
	}
	c.add(map[fileKey][]format.Extent{
		{path: "x", ino: 1, size: 70000, ctime: 1}: ext("old"),
		{path: "y", ino: 2, size: 70000, ctime: 1}: ext("y"),
	})
	c.add(map[fileKey][]format.Extent{{path: "x", ino: 3, size: 70000, ctime: 2}: ext("new")})
	check := func(c *SnapshotFileCache, path string, size int64, want []format.Extent) {
		t.Helper()
		got, ok := c.candidate(path, size)
		if ok != (want != nil) || !slices.Equal(got, want) {
			t.Errorf("candidate(%s, %d) = %v, %v; want %v", path, size, got, ok, want)
		}
	}
	check(c, "x", 70000, ext("new"))
	check(c, "y", 70000, ext("y"))
	check(c, "x", 70001, nil)

	p := filepath.Join(t.TempDir(), "cache")
	if err := c.Save(p); err != nil {
		t.Fatal(err)
	}
	l, err := LoadSnapshotFileCache(p, 100)
	if err != nil {
		t.Fatal(err)
	}
	check(l, "x", 70000, ext("new"))
	check(l, "y", 70000, ext("y"))

	// Trimming drops the old generations from both levels.
	for g := range 5 {
		m := map[fileKey][]format.Extent{}
		for i := range 40 {
			m[fileKey{path: fmt.Sprint("f", i), ino: uint64(g*1000 + i), size: 70000}] = ext(fmt.Sprintf("%d-%d", g, i))
		}
		l.add(m)
	}
	check(l, "x", 70000, nil)
	check(l, "y", 70000, nil)
	check(l, "f7", 70000, ext("4-7"))
	if len(l.latest) != 40 {
		t.Errorf("level 2 holds %d paths after the trim, want 40", len(l.latest))
	}
}
