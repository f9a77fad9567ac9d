package tests

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestContainerdSnapshotterOrdinary: an ordinary image (tar layers, here
// `oci2 export` of the same tree) unpacks and runs through oci2-snapshotter
// as through overlayfs, beside an imported OCIv2 image: it gets no FUSE
// mount, its layer is a plain snapshot, and removing both images leaves no
// snapshot.
func TestContainerdSnapshotterOrdinary(t *testing.T) {
	e := startContainerdOCI2(t, nil)
	archive := filepath.Join(t.TempDir(), "hello.tar")
	e.s.must("export", "hello:latest", "oci-archive:"+archive+":v1")
	if r := e.ctr("images", "import", "--snapshotter", "oci2", "--base-name", "ordinary/hello", archive); r.Err != nil {
		t.Fatalf("ctr images import --snapshotter oci2: %v\n%s\n%s", r.Err, r.Stderr, clip(e.sn.logText()))
	}
	t.Cleanup(func() { e.ctr("images", "rm", "--sync", "ordinary/hello:v1") })
	r := e.ctr("run", "--rm", "--snapshotter", "oci2", "ordinary/hello:v1", ctrID("o1"))
	if r.Err != nil || !strings.Contains(r.Stdout, helloOut) {
		t.Fatalf("ctr run of the ordinary image: %v\nstdout: %s\nstderr: %s", r.Err, r.Stdout, r.Stderr)
	}
	r = e.ctr("run", "--rm", "--snapshotter", "oci2", e.image, ctrID("o2"))
	if r.Err != nil || !strings.Contains(r.Stdout, helloOut) {
		t.Fatalf("ctr run of the OCIv2 image beside it: %v\nstdout: %s\nstderr: %s", r.Err, r.Stdout, r.Stderr)
	}
	if ms := fuseMountsUnder(e.sn.root); len(ms) != 1 {
		t.Errorf("FUSE mounts %q, want only the OCIv2 image's", ms)
	}
	ls := e.ctr("snapshots", "--snapshotter", "oci2", "ls").Stdout
	if n := strings.Count(strings.TrimSpace(ls), "\n"); n != 2 {
		t.Errorf("snapshots: %s; want two committed ones (the tar layer and the OCIv2 image)", ls)
	}
	for _, img := range []string{"ordinary/hello:v1", e.image} {
		if r := e.ctr("images", "rm", "--sync", img); r.Err != nil {
			t.Errorf("ctr images rm --sync %s: %v %s", img, r.Err, r.Stderr)
		}
	}
	if ls := e.ctr("snapshots", "--snapshotter", "oci2", "ls").Stdout; strings.Count(strings.TrimSpace(ls), "\n") != 0 {
		t.Errorf("snapshots left: %s", ls)
	}
	if ms := mountsUnder(e.sn.root); len(ms) != 0 {
		t.Errorf("mounts left under the snapshotter's root: %q", ms)
	}
}
