package writer

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/oci2/oci2/format"
)

func TestRacyRule(t *testing.T) {
	const s = int64(time.Second)
	base := 1700000000 * s
	for _, c := range []struct {
		ctime, stat, written int64
		want                 bool
	}{
		{base + 5e6, base + 2*s, base + 3*s, true},         // old file
		{base + 5e6, base + 5e6 + 50e6, base + 3*s, false}, // changed 50ms before the stat
		{base + 5e6, base + 5e6 + 150e6, base + 3*s, true}, // 150ms before
		{base, base + s/2, base + 3*s, false},              // whole-second ctime: 1s margin
		{base, base + 2*s, base + 3*s, true},               //
		{base + 5e6, base + 2*s, 0, false},                 // never saved
		{base + 5e6, base + 2*s, base + 5e6 + 10e6, false}, // saved right after the change
		{base + 5e6, base + 5e6 + 10e6, base + 9*s, false}, // saved late, looked at early
	} {
		e := cacheEntry{ctimeNs: c.ctime, statNs: c.stat}
		if got := e.trusted(c.written); got != c.want {
			t.Errorf("ctime %d stat %d written %d: trusted=%v, want %v", c.ctime, c.stat, c.written, got, c.want)
		}
	}
}

// TestStatCacheDecodesOnlyUsedDirs: a cache in the single file of before
// loads without decoding any source directory, a create decodes its own;
// the first save moves every directory to its own file, and later saves
// rewrite only the files of directories recorded since.
func TestStatCacheDecodesOnlyUsedDirs(t *testing.T) {
	want := map[string]map[string]cacheEntry{}
	for i, dir := range []string{"/src/a", "/src/b", "/src/c"} {
		m := map[string]cacheEntry{}
		for j := 0; j < 50; j++ {
			var id format.ChunkID
			id[0], id[1] = byte(i), byte(j)
			m[fmt.Sprintf("f%d", j)] = cacheEntry{dev: 1, ino: uint64(i*100 + j), size: 10, mtimeNs: 5, ctimeNs: 6, statNs: 7,
				extents: []format.Extent{{Length: 10, Chunk: id}, {Zero: true, Length: 3}}}
		}
		want[dir] = m
	}
	path := filepath.Join(t.TempDir(), "files")
	single := NewStatCache()
	single.dirs = want
	if err := os.WriteFile(path, single.encode(time.Now().UnixNano()), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadStatCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.dirs) != 0 || loaded.Len() != 150 {
		t.Fatalf("load decoded %d directories (%d files); want 0 (150)", len(loaded.dirs), loaded.Len())
	}
	if !reflect.DeepEqual(loaded.dirLocked("/src/b"), want["/src/b"]) || len(loaded.dirs) != 1 {
		t.Fatalf("/src/b decoded wrong, or %d directories decoded", len(loaded.dirs))
	}
	if err := loaded.Save(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() > 64 {
		t.Fatalf("the single file after the first save: %v, %v", fi, err)
	}
	files := map[string]os.FileInfo{}
	for dir := range want {
		fi, err := os.Stat(dirFile(path, dir))
		if err != nil {
			t.Fatalf("%s has no file of its own: %v", dir, err)
		}
		files[dir] = fi
	}
	again, err := LoadStatCache(path)
	if err != nil {
		t.Fatal(err)
	}
	for dir, m := range want {
		if got := again.dirLocked(dir); !reflect.DeepEqual(got, m) {
			t.Errorf("%s after a save: %d entries, differ from the %d saved", dir, len(got), len(m))
		}
	}
	// One directory recorded: only its file is written again.
	third, _ := LoadStatCache(path)
	third.mu.Lock()
	third.dirs["/src/a"] = map[string]cacheEntry{"new": {dev: 2}}
	third.dirty["/src/a"] = true
	third.mu.Unlock()
	if err := third.Save(path); err != nil {
		t.Fatal(err)
	}
	for dir, before := range files {
		fi, err := os.Stat(dirFile(path, dir))
		if err != nil {
			t.Fatal(err)
		}
		if rewritten := !os.SameFile(before, fi); rewritten != (dir == "/src/a") {
			t.Errorf("%s: file rewritten %v", dir, rewritten)
		}
	}
}
