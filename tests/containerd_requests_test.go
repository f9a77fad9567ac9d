package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oci2/oci2/store/registry/registrytest"
)

// TestContainerdLazyRequests: importing an image from its registry and
// running it asks the registry for its manifest once. The import fetches
// the metadata into the store; the snapshotter's mount opens it from
// there and goes to the registry only for data frames (it repeats neither
// the manifest fetch nor the metadata's validation).
func TestContainerdLazyRequests(t *testing.T) {
	l := startLazyCtd(t)
	pushed := len(l.proxy.Requests())
	l.importImage(t, l.ref)
	if out := l.runOut(t, "req1"); !strings.Contains(out, helloOut) {
		t.Fatalf("ctr run: %q, want %q", out, helloOut)
	}
	reqs := l.proxy.Requests()[pushed:]
	t.Logf("import + run: %d requests\n%s", len(reqs), strings.Join(reqs, "\n"))
	manifests := map[string]int{}
	blobs := 0
	for _, r := range reqs {
		switch {
		case strings.Contains(r, "/manifests/"):
			manifests[r]++
		case strings.Contains(r, "/blobs/"):
			blobs++
		}
	}
	if len(manifests) == 0 {
		t.Fatal("no manifest requests: the image did not come from the registry")
	}
	for r, n := range manifests {
		if n != 1 {
			t.Errorf("%s: %d times, want once (the import's; the mount reads the store)", r, n)
		}
	}
	if blobs == 0 {
		t.Errorf("no blob requests: the run fetched no data, the image was not lazy")
	}
}

// TestContainerdLazyPrefetch: with --prefetch-dir the snapshotter's lazy
// mount of an image fetches the profile recorded for it (`oci2 mount
// --record`, named by its manifest digest) before the mount is ready:
// a container then reads the profiled files with the registry stalled.
func TestContainerdLazyPrefetch(t *testing.T) {
	dir := workDir(t)
	profiles := filepath.Join(dir, "profiles")
	mkdirT(t, profiles)
	l := startLazyCtd(t, "--prefetch-dir", profiles, "--read-timeout", "3s")

	// Record the profile through a mount of another store.
	rec := newStore(t, filepath.Join(dir, "rec"))
	rec.env = l.s.env
	mnt := filepath.Join(dir, "mnt-rec")
	mkdirT(t, mnt)
	mountCLI(t, rec, mnt, "--registry", "--record", filepath.Join(dir, "profile"), l.ref)
	manifest, _ := decodeJSON(t, rec.must("mount", "--status", mnt).Stdout)["manifest"].(string)
	for _, p := range []string{"etc/passwd", "etc/group", "bin/probe", "data/d03/f0003"} {
		if _, err := os.ReadFile(filepath.Join(mnt, p)); err != nil {
			t.Fatal(err)
		}
	}
	rec.must("umount", mnt)
	prof, err := os.ReadFile(filepath.Join(dir, "profile"))
	if err != nil || !strings.HasPrefix(manifest, "sha256:") {
		t.Fatalf("profile %v, manifest %q", err, manifest)
	}
	if err := os.WriteFile(filepath.Join(profiles, strings.TrimPrefix(manifest, "sha256:")), prof, 0o644); err != nil {
		t.Fatal(err)
	}

	l.importImage(t, l.ref)
	mounts := fuseMountsUnder(l.sn.root)
	if len(mounts) != 1 {
		t.Fatalf("FUSE mounts %q, want one", mounts)
	}
	if v := waitStatus(t, l.s, mounts[0], "prefetch"); v != "done" {
		t.Fatalf("the snapshotter's mount: prefetch %q, want done", v)
	}
	l.proxy.Add(registrytest.Fault{Path: "/blobs/", Kind: registrytest.Stall})
	defer l.proxy.Clear()
	if out := l.runOut(t, "pf1", "/bin/probe", "read", "/data/d03/f0003"); !strings.Contains(out, l.readOut(t, "data/d03/f0003")) {
		t.Errorf("reading the prefetched /data/d03/f0003 with the registry stalled: %q, want %q", out, l.readOut(t, "data/d03/f0003"))
	}
}
