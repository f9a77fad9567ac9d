package tests

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/store/registry/registrytest"
)

// hangGuard bounds a read that must fail or succeed rather than hang; it
// detects a hang, it measures nothing.
const hangGuard = 90 * time.Second

// lazyReadTimeout is the --read-timeout of lazy mounts in tests that stall
// the registry: it must be long enough for every read the registry does
// answer (a fetch through the proxy, on a CI machine whose 2 cores run
// other daemons' tests at once) and short enough that the stalled reads,
// which wait it out, keep the tests short.
const lazyReadTimeout = "10s"

// lazyImage pushes a tree of about 40 MB of incompressible files plus a
// small one through a recording proxy and returns the reference, the
// source tree and the image's stored bytes.
func lazyImage(t *testing.T, dir string) (proxy *registrytest.Proxy, ref, src string, stored int64) {
	srv := registrytest.Start(t, registrytest.Options{})
	proxy = registrytest.NewProxy(t, srv.URL())
	src = filepath.Join(dir, "src")
	writeMediumTree(t, src, 41, 200)
	mkdirT(t, filepath.Join(src, "etc"))
	if err := os.WriteFile(filepath.Join(src, "etc/hello.txt"), []byte("hello, lazy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := regStore(t, filepath.Join(dir, "a"))
	_, out := a.create(src, "app:v1")
	ref = proxy.Host + "/oci2/app:v1"
	a.pushJSON("app:v1", ref)
	return proxy, ref, src, num(out, "stored_bytes")
}

// mountStatus reads `oci2 mount --status DIR` once the serving process
// has counted at least reads reads.
func mountStatus(t *testing.T, s *store, dir string, reads int64) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := decodeJSON(t, s.must("mount", "--status", dir).Stdout)
		served, _ := st["served"].(map[string]any)
		if num(served, "reads") >= reads || time.Now().After(deadline) {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMountLazyRegistry: a name the store lacks is mounted straight from
// its registry (distribution, behind the recording proxy). Reading one
// small file fetches a few percent of the image's stored bytes, verified
// content; the frames fetched are kept, so a later pull fetches only the
// rest.
func TestMountLazyRegistry(t *testing.T) {
	requireMount(t)
	dir := workDir(t)
	proxy, ref, src, stored := lazyImage(t, dir)

	b := regStore(t, filepath.Join(dir, "b"))
	mnt := filepath.Join(dir, "mnt")
	mkdirT(t, mnt)
	before := len(proxy.Requests())
	mountCLI(t, b, mnt, ref)
	got, err := os.ReadFile(filepath.Join(mnt, "etc/hello.txt"))
	if err != nil || string(got) != "hello, lazy\n" {
		t.Fatalf("reading etc/hello.txt: %q, %v", got, err)
	}
	st := mountStatus(t, b, mnt, 1)
	fetched, _ := st["fetched"].(map[string]any)
	received := num(fetched, "bytes_received")
	t.Logf("mount + one small file: %d bytes received of %d stored (%.2f%%), %d requests (proxy saw %d), %d frames",
		received, stored, 100*float64(received)/float64(stored), num(fetched, "requests"),
		len(proxy.Requests())-before, num(fetched, "frames_fetched"))
	if received == 0 || received > stored*5/100 {
		t.Errorf("received %d bytes for one small file of an image of %d stored bytes; want at most 5%%", received, stored)
	}
	framesFetched := num(fetched, "frames_fetched")
	if framesFetched == 0 {
		t.Errorf("no data frame fetched: %v", fetched)
	}

	// Every file reads back as in the source, each chunk verified.
	compareTrees(t, snapshot(t, src), snapshot(t, mnt), compareOptions{SkipRoot: true})
	b.must("umount", mnt)

	// The frames the mount fetched are in the store: a pull fetches the
	// rest (nothing twice) and the store checks.
	pull := b.pullJSON(ref)
	if num(pull, "frames_present") < framesFetched || num(pull, "frames_fetched") != 0 {
		t.Logf("pull after a full read through the mount: %v", pull)
	}
	if num(pull, "frames_fetched") != 0 {
		t.Errorf("pull after reading every file through the mount fetched %d frames again", num(pull, "frames_fetched"))
	}
	b.must("check", "--read-data")
}

// TestMountLazyStall: when the registry stalls, reads of files not fetched
// yet fail with EIO within --read-timeout (never hang), files read before
// keep working, and reads work again once the registry answers.
func TestMountLazyStall(t *testing.T) {
	requireMount(t)
	dir := workDir(t)
	proxy, ref, src, _ := lazyImage(t, dir)
	c := regStore(t, filepath.Join(dir, "c"))
	mnt := filepath.Join(dir, "mnt")
	mkdirT(t, mnt)
	mountCLI(t, c, mnt, "--read-timeout", lazyReadTimeout, ref)
	if _, err := os.ReadFile(filepath.Join(mnt, "etc/hello.txt")); err != nil {
		t.Fatal(err)
	}

	stall := proxy.Add(registrytest.Fault{Path: "/blobs/", Kind: registrytest.Stall})
	uncached := "d05/f0005"
	err := readBounded(t, filepath.Join(mnt, uncached))
	if !errors.Is(err, unix.EIO) {
		t.Errorf("reading %s with the registry stalled: %v, want EIO", uncached, err)
	}
	if proxy.Hits(stall) == 0 {
		t.Errorf("the read did not reach the registry")
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "etc/hello.txt")); err != nil || string(b) != "hello, lazy\n" {
		t.Errorf("cached file with the registry stalled: %q, %v", b, err)
	}

	proxy.Clear()
	want, _ := os.ReadFile(filepath.Join(src, uncached))
	if err := readBounded(t, filepath.Join(mnt, uncached)); err != nil {
		t.Errorf("reading %s after the registry recovered: %v", uncached, err)
	} else if got, _ := os.ReadFile(filepath.Join(mnt, uncached)); !bytes.Equal(got, want) {
		t.Errorf("%s after recovery: %d bytes differ from the source's %d", uncached, len(got), len(want))
	}
}

// readBounded reads a whole file, failing the test if it hangs.
func readBounded(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := os.ReadFile(path)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(hangGuard):
		t.Fatalf("reading %s hung for %v", path, hangGuard)
		return nil
	}
}

// waitStatus polls `oci2 mount --status DIR` until field is no longer
// empty or "running", and returns its value.
func waitStatus(t *testing.T, s *store, dir, field string) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st := decodeJSON(t, s.must("mount", "--status", dir).Stdout)
		v, _ := st[field].(string)
		if v != "" && v != "running" {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %q after 2 minutes", field, v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMountLazyPrefetch: --record writes the chunks a run read; --prefetch
// of that profile into an empty store fetches exactly those first (they
// read with the registry stalled, other files do not); --fetch-all pulls
// the rest and names the image, after which the registry is not needed.
func TestMountLazyPrefetch(t *testing.T) {
	requireMount(t)
	dir := workDir(t)
	proxy, ref, src, _ := lazyImage(t, dir)
	profile := filepath.Join(dir, "profile")
	used := []string{"etc/hello.txt", "d03/f0003", "d07/f0007"}

	b := regStore(t, filepath.Join(dir, "b"))
	mnt := filepath.Join(dir, "mnt-b")
	mkdirT(t, mnt)
	mountCLI(t, b, mnt, "--record", profile, ref)
	for _, p := range used {
		if _, err := os.ReadFile(filepath.Join(mnt, p)); err != nil {
			t.Fatal(err)
		}
	}
	b.must("umount", mnt)
	prof, err := os.ReadFile(profile)
	if err != nil {
		t.Fatalf("no profile written: %v", err)
	}
	lines := bytes.Count(prof, []byte("\n"))
	t.Logf("profile: %d chunks", lines)
	if lines < len(used) {
		t.Errorf("profile lists %d chunks for %d files read", lines, len(used))
	}

	c := regStore(t, filepath.Join(dir, "c"))
	mnt = filepath.Join(dir, "mnt-c")
	mkdirT(t, mnt)
	mountCLI(t, c, mnt, "--prefetch", profile, "--read-timeout", lazyReadTimeout, ref)
	if v := waitStatus(t, c, mnt, "prefetch"); v != "done" {
		t.Fatalf("prefetch: %s", v)
	}
	proxy.Add(registrytest.Fault{Path: "/blobs/", Kind: registrytest.Stall})
	for _, p := range used {
		want, _ := os.ReadFile(filepath.Join(src, p))
		if got, err := os.ReadFile(filepath.Join(mnt, p)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("prefetched %s with the registry stalled: %d bytes, %v", p, len(got), err)
		}
	}
	if err := readBounded(t, filepath.Join(mnt, "d11/f0011")); !errors.Is(err, unix.EIO) {
		t.Errorf("a file outside the profile read with the registry stalled: %v, want EIO", err)
	}
	proxy.Clear()
	c.must("umount", mnt)

	d := regStore(t, filepath.Join(dir, "d"))
	mnt = filepath.Join(dir, "mnt-d")
	mkdirT(t, mnt)
	mountCLI(t, d, mnt, "--fetch-all", ref)
	if v := waitStatus(t, d, mnt, "fetch_all"); v != "done" {
		t.Fatalf("fetch-all: %s", v)
	}
	proxy.Add(registrytest.Fault{Kind: registrytest.Stall})
	compareTrees(t, snapshot(t, src), snapshot(t, mnt), compareOptions{SkipRoot: true})
	d.must("umount", mnt)
	proxy.Clear()
	if out := d.must("images").Stdout; !bytes.Contains([]byte(out), []byte("oci2/app")) {
		t.Errorf("after --fetch-all the store does not name the image:\n%s", out)
	}
	d.must("check", "--read-data")
}

// TestMountLazyFaults: reads through a lazy mount survive a registry that
// answers 500 or drops a body mid-way (retried), ignores Range (whole packs)
// or rotates its bearer token (a new token is fetched); a registry serving
// corrupt bytes gives EIO, never wrong bytes, and the right bytes once it
// serves them again.
func TestMountLazyFaults(t *testing.T) {
	requireMount(t)
	dir := workDir(t)
	proxy, ref, src, _ := lazyImage(t, dir)
	proxy.RequireBearer("ci", "hunter2")
	s := newStore(t, filepath.Join(dir, "c"))
	s.env = dockerEnv(registrytest.DockerConfig(t, proxy.Host, "ci", "hunter2"))
	mnt := filepath.Join(dir, "mnt")
	mkdirT(t, mnt)
	mountCLI(t, s, mnt, "--read-timeout", "20s", ref)

	read := func(p string) error {
		want, err := os.ReadFile(filepath.Join(src, p))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(mnt, p))
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("%s: wrong bytes served (%d, want %d)", p, len(got), len(want))
		}
		return err
	}
	for _, c := range []struct {
		name, file string
		fault      registrytest.Fault
	}{
		{"500", "d01/f0001", registrytest.Fault{Path: "/blobs/", Count: 2, Kind: registrytest.Status, Status: 500}},
		{"drop mid-body", "d02/f0002", registrytest.Fault{Path: "/blobs/", Count: 1, Kind: registrytest.DropMidBody}},
		{"ignored Range", "d06/f0006", registrytest.Fault{Path: "/blobs/", Kind: registrytest.IgnoreRange}},
	} {
		f := proxy.Add(c.fault)
		if err := read(c.file); err != nil {
			t.Errorf("%s: reading %s: %v", c.name, c.file, err)
		}
		if proxy.Hits(f) == 0 {
			t.Errorf("%s: the fault was never hit", c.name)
		}
		proxy.Clear()
	}

	proxy.RotateToken()
	if err := read("d08/f0008"); err != nil {
		t.Errorf("after the token rotated: %v", err)
	}

	// A byte in every 4 KiB: a range may also carry frames not asked for.
	corrupt := proxy.Add(registrytest.Fault{Path: "/blobs/", Kind: registrytest.Modify, Modify: func(b []byte) []byte {
		b = bytes.Clone(b)
		for i := 0; i < len(b); i += 4096 {
			b[i] ^= 0x55
		}
		return b
	}})
	if err := read("d12/f0012"); !errors.Is(err, unix.EIO) {
		t.Errorf("corrupt frames: %v, want EIO (fault hit %d times)", err, proxy.Hits(corrupt))
	}
	proxy.Clear()
	if err := read("d12/f0012"); err != nil {
		t.Errorf("after the registry serves the right bytes again: %v", err)
	}
	// The status file is rewritten every 250 ms: wait for the failed read.
	deadline := time.Now().Add(30 * time.Second)
	for {
		served, _ := decodeJSON(t, s.must("mount", "--status", mnt).Stdout)["served"].(map[string]any)
		if num(served, "read_errors") > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("status counts no read errors: %v", served)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}
