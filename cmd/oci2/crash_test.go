package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeBigTree writes about total bytes of seeded files in 32 directories,
// sizes from 1 KiB to 4 MiB, some files duplicated.
func writeBigTree(t *testing.T, root string, seed int64, total int64) {
	w := newTreeWriter(t, root, seed)
	var n int64
	var prev []byte
	for i := 0; n < total; i++ {
		size := 1<<10 + w.rng.Intn(4<<20)
		if w.rng.Intn(4) == 0 {
			size = 1<<10 + w.rng.Intn(64<<10) // many small files
		}
		data := w.random(size)
		if i%16 == 15 {
			data = prev
		}
		w.file(fmt.Sprintf("d%02d/f%05d", i%32, i), data, 0o644)
		n += int64(len(data))
		prev = data
	}
	fixTimes(t, root)
}

// unpackSame unpacks ref and compares it with want.
func unpackSame(t *testing.T, c cli, ref string, want map[string]entry) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "out")
	c.must("unpack", ref, dest)
	sameTree(t, want, snapshot(t, dest))
	os.RemoveAll(dest)
}

// TestConcurrentCreatesAndGC runs two creates and a gc (plus a gc that does
// not wait) on one store at once: every command succeeds, except that the
// non-waiting gc may report the store busy; check passes and both images
// unpack identically.
func TestConcurrentCreatesAndGC(t *testing.T) {
	dir := t.TempDir()
	srcA, srcB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeBigTree(t, srcA, 11, 24<<20)
	writeBigTree(t, srcB, 12, 24<<20)
	c := cli{t, filepath.Join(dir, "store")}
	c.must("create", "--tag", "old", srcA)
	c.must("rm", "old") // garbage for the gc to collect

	var wg sync.WaitGroup
	results := make([]result, 4)
	jobs := [][]string{
		{"create", "--tag", "a", srcA},
		{"create", "--tag", "b", srcB},
		{"gc"},
		{"gc", "--no-wait"},
	}
	for i, args := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i >= 2 {
				time.Sleep(time.Duration(i) * 50 * time.Millisecond)
			}
			results[i] = c.run(args...)
		}()
	}
	wg.Wait()
	for i, r := range results {
		busy := i == 3 && r.code == 1 && strings.Contains(r.stderr, "in use")
		if r.code != 0 && !busy {
			t.Errorf("oci2 %s: exit %d\n%s", strings.Join(jobs[i], " "), r.code, r.stderr)
		}
	}
	c.must("check", "--read-data")
	unpackSame(t, c, "a", snapshot(t, srcA))
	unpackSame(t, c, "b", snapshot(t, srcB))
	c.must("gc")
	c.must("check", "--read-data")
}
