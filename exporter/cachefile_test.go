package exporter

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/oci2/oci2/format"
)

func TestFileCacheSaveLoad(t *testing.T) {
	c := NewFileCache(0)
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
	l, err := LoadFileCache(p, 0)
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
	l, err = LoadFileCache(p, 0)
	if err == nil || l.Len() != 0 {
		t.Errorf("damaged cache: %d entries, error %v", l.Len(), err)
	}
	if l, err := LoadFileCache(filepath.Join(t.TempDir(), "missing"), 0); err != nil || l.Len() != 0 {
		t.Errorf("missing cache: %d entries, error %v", l.Len(), err)
	}
}

func TestFileCacheBound(t *testing.T) {
	c := NewFileCache(100)
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
