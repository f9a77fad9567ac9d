package main

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// TestKilledCreate SIGKILLs `oci2 create` of a ~200 MB tree at seeded random
// points. After every kill `check --read-data` passes and the image
// committed before still unpacks identically; at the end the store still
// takes a whole create, gc and check.
func TestKilledCreate(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and packs 200 MB several times")
	}
	dir := t.TempDir()
	big, small := filepath.Join(dir, "big"), filepath.Join(dir, "small")
	writeBigTree(t, big, 7, 200<<20)
	writeA(t, small)
	wantSmall := snapshot(t, small)

	// How long a whole create takes, in a scratch store.
	scratch := cli{t, filepath.Join(dir, "scratch")}
	t0 := time.Now()
	scratch.must("create", big)
	full := time.Since(t0)
	os.RemoveAll(scratch.store)
	t.Logf("whole create of the big tree: %v", full)

	c := cli{t, filepath.Join(dir, "store")}
	c.must("create", "--tag", "committed", small)
	rng := rand.New(rand.NewSource(20261127))
	completed := 0
	for i := 0; i < 8; i++ {
		delay := time.Duration(rng.Int63n(int64(full) * 11 / 10))
		cmd := exec.Command(oci2Bin, "--store", c.store, "create", "--tag", "victim", big)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		t.Logf("kill %d after %v: %v", i, delay, err)
		if err == nil {
			completed++
		} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
			t.Fatalf("create failed by itself: %v\n%s", err, stderr.String())
		}

		if r := c.run("check", "--read-data"); r.code != 0 {
			t.Fatalf("after kill %d at %v: check: exit %d\n%s%s", i, delay, r.code, r.stdout, r.stderr)
		}
		imgs := images(c)
		if imgs["docker.io/library/committed:latest"].Digest == "" {
			t.Fatalf("committed image lost: %+v", imgs)
		}
		if _, ok := imgs["docker.io/library/victim:latest"]; ok {
			// It finished before the kill: start the next round from scratch.
			c.must("rm", "victim")
		}
		if i%2 == 1 {
			c.must("gc")
		}
	}
	t.Logf("%d of 8 creates finished before their kill", completed)
	unpackSame(t, c, "committed", wantSmall)

	c.must("create", "--tag", "victim", big)
	c.must("gc")
	c.must("check", "--read-data")
	unpackSame(t, c, "victim", snapshot(t, big))
	unpackSame(t, c, "committed", wantSmall)
	if ents, _ := os.ReadDir(filepath.Join(c.store, "oci2", "ingest")); len(ents) != 0 {
		t.Errorf("gc left %d ingest files", len(ents))
	}
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
