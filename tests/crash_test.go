package tests

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oci2/oci2/internal/testenv"
)

// writeMediumTree makes nfiles files of random content (some duplicated)
// under root: enough work for create to take a noticeable time.
func writeMediumTree(t testing.TB, root string, seed uint64, nfiles int) {
	t.Helper()
	b := newTreeBuilder(t, root, seed)
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	var prev []byte
	for i := range nfiles {
		d := fmt.Sprintf("d%02d", i%17)
		if _, err := os.Stat(b.path(d)); err != nil {
			b.dir(d, 0o755, os.Getuid(), os.Getgid())
		}
		data := b.random(1 + b.rng.IntN(400<<10))
		if i%10 == 9 {
			data = prev // duplicated content
		}
		b.file(fmt.Sprintf("%s/f%04d", d, i), data, 0o644, os.Getuid(), os.Getgid())
		prev = data
	}
	b.finish()
}

// TestKilledCreateLeavesValidStore SIGKILLs real `oci2 create` processes at
// random points (the seed is logged; OCI2_TEST_SEED replays it). After every
// kill `check --read-data` passes and the image committed before is still
// listed; at the end it unpacks identically, and the store still takes a
// whole create, gc and check, with nothing left in ingest.
func TestKilledCreateLeavesValidStore(t *testing.T) {
	dir := workDir(t)
	small, medium := filepath.Join(dir, "small"), filepath.Join(dir, "medium")
	writeSmallTree(t, small)
	writeMediumTree(t, medium, 3, 300)
	want := snapshot(t, small)

	// how long a whole create takes, in a scratch store
	full := newStore(t, filepath.Join(dir, "timing-store")).must("create", medium)
	t.Logf("full create of the medium tree: %v", full.Elapsed)

	s := newStore(t, filepath.Join(dir, "store"))
	s.create(small, "committed")
	rng := rand.New(rand.NewPCG(testenv.Seed(t), 1))
	const kills = 10
	completed := 0
	for i := range kills {
		// up to 1.1 times a whole create: some rounds finish before the kill
		delay := time.Duration(rng.Int64N(int64(full.Elapsed)*11/10 + 1))
		if killCreate(t, s, medium, delay, i) {
			completed++
		}
		if r := s.run("check", "--read-data"); r.Err != nil {
			t.Fatalf("after killing create at %v: oci2 check: %v\n%s%s", delay, r.Err, r.Stdout, r.Stderr)
		}
		if out := s.must("images").Stdout; !strings.Contains(out, "committed") {
			t.Fatalf("after killing create at %v: committed image lost:\n%s", delay, out)
		}
		// A create that finished makes the next one fast: remove it. Every
		// other round gc collects what the killed processes left; in the
		// rounds between, the next create runs over that debris.
		s.run("rm", "victim")
		if i%2 == 1 {
			s.must("gc")
		}
	}
	t.Logf("%d of %d creates finished before their kill", completed, kills)
	dest := filepath.Join(dir, "dest")
	s.must("unpack", "committed", dest)
	compareTrees(t, want, snapshot(t, dest), compareOptions{})

	// the store is still usable: a full create, gc, check
	s.create(medium, "victim")
	s.must("gc")
	s.must("check", "--read-data")
	victim := filepath.Join(dir, "victim")
	s.must("unpack", "victim", victim)
	compareTrees(t, snapshot(t, medium), snapshot(t, victim), compareOptions{})
	if ents, _ := os.ReadDir(filepath.Join(s.dir, "oci2", "ingest")); len(ents) != 0 {
		t.Errorf("gc left %d ingest files", len(ents))
	}
}

// killCreate starts `oci2 create --tag victim src`, SIGKILLs it after delay
// and reports whether it had finished by then; a create that failed on its
// own fails t.
func killCreate(t *testing.T, s *store, src string, delay time.Duration, round int) (finished bool) {
	t.Helper()
	cmd := exec.Command(bin(t, "oci2"), "--store", s.dir, "create", "--tag", "victim", src)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay)
	cmd.Process.Signal(syscall.SIGKILL)
	err := cmd.Wait()
	t.Logf("kill %d after %v: %v", round, delay, err)
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && !ws.Signaled() && err != nil {
		t.Fatalf("create %d failed on its own before the kill: %v\n%s", round, err, stderr.String())
	}
	return err == nil
}

// TestConcurrentCreatesAndGC: two creates into one store while gc runs
// again and again, and one gc that does not wait for writers (it may only
// report the store in use); every other command succeeds, the garbage of a
// removed image is collected, check passes and both images come out whole.
func TestConcurrentCreatesAndGC(t *testing.T) {
	dir := workDir(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeMediumTree(t, a, 11, 200)
	writeMediumTree(t, b, 12, 200)
	old := filepath.Join(dir, "old")
	writeMediumTree(t, old, 13, 50)
	s := newStore(t, filepath.Join(dir, "store"))
	s.create(a, "seed") // so the store exists
	oldDigest, _ := s.create(old, "old")
	s.must("rm", "old") // garbage for the gcs to collect

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	done := make(chan struct{})
	for _, job := range []struct{ src, tag string }{{a, "a"}, {b, "b"}} {
		wg.Go(func() {
			if r := s.run("create", "--tag", job.tag, job.src); r.Err != nil {
				errs <- fmt.Errorf("create %s: %v\n%s", job.tag, r.Err, r.Stderr)
			}
		})
	}
	wg.Go(func() {
		r := s.run("gc", "--no-wait")
		if r.Err != nil && !strings.Contains(r.Stderr, "in use") {
			errs <- fmt.Errorf("gc --no-wait: %v\n%s", r.Err, r.Stderr)
		}
	})
	var gcs int
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		for {
			select {
			case <-done:
				return
			default:
			}
			if r := s.run("gc"); r.Err != nil {
				errs <- fmt.Errorf("gc: %v\n%s", r.Err, r.Stderr)
				return
			}
			gcs++
		}
	}()
	wg.Wait()
	close(done)
	<-gcDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d gc runs during the creates", gcs)
	s.must("rm", "seed")
	s.must("gc")
	s.must("check", "--read-data")
	for _, tag := range []string{"a", "b"} {
		dest := filepath.Join(dir, "dest-"+tag)
		s.must("unpack", tag, dest)
		compareTrees(t, snapshot(t, filepath.Join(dir, tag)), snapshot(t, dest), compareOptions{})
	}
	gone := filepath.Join(s.dir, "blobs", strings.Replace(oldDigest, ":", "/", 1))
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("index %s of the removed image is still stored (%v)", oldDigest, err)
	}
}

// TestRecreateAfterGC: creating the same tree again after its image was
// removed and collected (the files cache still knows its files, the store
// no longer has their chunks) gives the same, correct image every time.
func TestRecreateAfterGC(t *testing.T) {
	dir := workDir(t)
	medium := filepath.Join(dir, "medium")
	writeMediumTree(t, medium, 3, 300)
	want := snapshot(t, medium)
	s := newStore(t, filepath.Join(dir, "store"))
	var first string
	for i := range 4 {
		r := s.run("create", "--json", "--tag", "again", medium)
		if r.Err != nil {
			t.Fatalf("create round %d (after %d rm+gc): %v\n%s", i, i, r.Err, r.Stderr)
		}
		d := digestField(decodeJSON(t, r.Stdout))
		if first == "" {
			first = d
		} else if d != first {
			t.Errorf("round %d: digest %s, first round gave %s", i, d, first)
		}
		dest := filepath.Join(dir, fmt.Sprint("dest", i))
		s.must("unpack", "again", dest)
		compareTrees(t, want, snapshot(t, dest), compareOptions{})
		s.must("rm", "again")
		s.must("gc")
	}
	s.must("check", "--read-data")
}
