package tests

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/v2/core/snapshots"
	snapshotproxy "github.com/containerd/containerd/v2/core/snapshots/proxy"
	"github.com/containerd/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/oci2/oci2/snapshotter"
	"github.com/oci2/oci2/store/registry/registrytest"
)

// TestContainerdLazyRestarts: a container of an image imported from its
// registry keeps running, and reading files not fetched before, across a
// restart of containerd and one of the snapshotter (SIGTERM); a new
// container starts after each. With the registry stalled, reading a file
// not fetched yet fails with EIO inside the container within the
// snapshotter's --read-timeout (never hangs), files read before still
// read, and the file reads once the registry answers again; likewise with
// the registry gone (connections dropped).
func TestContainerdLazyRestarts(t *testing.T) {
	l := startLazyCtd(t, "--read-timeout", lazyReadTimeout)
	l.importImage(t, l.ref)
	c1 := startProbe(t, l.ctdOCI2, "r1")
	read := func(when, p string) {
		t.Helper()
		if out := c1.exec(t, "/bin/probe", "read", "/"+p); !strings.Contains(out, l.readOut(t, p)) {
			t.Errorf("%s, reading /%s in the running container: %q, want %q", when, p, out, l.readOut(t, p))
		}
	}
	hello := func(when, id string) {
		t.Helper()
		if out := l.runOut(t, id); !strings.Contains(out, helloOut) {
			t.Errorf("%s, a new container: %q, want %q", when, out, helloOut)
		}
	}

	l.ctd.restart(t)
	c1.checkRunning(t, "after containerd restarted")
	read("after containerd restarted", "data/d01/f0001")
	hello("after containerd restarted", "r2")

	if err := l.sn.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("oci2-snapshotter on SIGTERM: %v", err)
	}
	read("with the snapshotter stopped", "data/d02/f0002")
	l.sn.start(t)
	l.awaitSnapshotter(t)
	c1.checkRunning(t, "after the snapshotter restarted")
	read("after the snapshotter restarted", "data/d04/f0004")
	hello("after the snapshotter restarted", "r3")
	if ms := fuseMountsUnder(l.sn.root); len(ms) != 1 {
		t.Errorf("after the restarts, FUSE mounts %q, want the one adopted", ms)
	}

	stall := l.proxy.Add(registrytest.Fault{Path: "/blobs/", Kind: registrytest.Stall})
	if out := c1.exec(t, "/bin/probe", "read", "/data/d05/f0005"); !strings.Contains(out, "input/output error") {
		t.Errorf("reading a file not fetched with the registry stalled: %q, want EIO", out)
	}
	if l.proxy.Hits(stall) == 0 {
		t.Errorf("the read did not reach the registry")
	}
	read("with the registry stalled", "data/d01/f0001")
	l.proxy.Clear()
	read("after the registry recovered", "data/d05/f0005")

	// A registry that is gone: every connection closed unanswered.
	gone := l.proxy.Add(registrytest.Fault{Kind: registrytest.Drop})
	if out := c1.exec(t, "/bin/probe", "read", "/data/d06/f0006"); !strings.Contains(out, "input/output error") {
		t.Errorf("reading a file not fetched with the registry gone: %q, want EIO", out)
	}
	if l.proxy.Hits(gone) == 0 {
		t.Errorf("the read did not try the registry")
	}
	l.proxy.Clear()
	read("after the registry came back", "data/d06/f0006")
}

// TestContainerdSnapshotterGC: containerd's gc and the snapshotter agree
// on what is live. Snapshots containerd does not know (an image snapshot
// and a container layer on it, made on the snapshotter's socket directly,
// as an import that died would leave them) are removed by containerd's gc,
// their mount ended; removing the image and its container leaves no mount
// of any kind under the snapshotter's root (/proc/self/mountinfo), no
// snapshot in the snapshotter and no `oci2 mount` process.
func TestContainerdSnapshotterGC(t *testing.T) {
	e := startContainerdOCI2(t, func(src string) {
		buildStatic(t, probeSource, filepath.Join(src, "bin/probe"))
		os.Chmod(filepath.Join(src, "tmp"), 0o1777)
	})
	c1 := startProbe(t, e, "g1")
	sn, done := snapshotterClient(t, e.sn.sock)
	defer done()
	ctx := context.Background()
	var labels map[string]string
	sn.Walk(ctx, func(_ context.Context, i snapshots.Info) error {
		if i.Labels[snapshotter.LabelImage] != "" {
			labels = maps.Clone(i.Labels)
		}
		return nil
	})
	if labels == nil {
		t.Fatal("the snapshotter has no image snapshot")
	}
	labels[snapshots.LabelSnapshotRef] = "orphan-image"
	if _, err := sn.Prepare(ctx, "orphan-import", "", snapshots.WithLabels(labels)); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("orphan image snapshot: %v, want already exists", err)
	}
	if _, err := sn.Prepare(ctx, "orphan-layer", "orphan-image"); err != nil {
		t.Fatalf("orphan container layer: %v", err)
	}
	if ms := fuseMountsUnder(e.sn.root); len(ms) != 2 {
		t.Fatalf("FUSE mounts %q, want the image's and the orphan's", ms)
	}
	c1.exec(t, "/bin/probe", "check", "/tmp/written") // the live one is untouched

	c1.remove(t)
	if r := e.ctr("images", "rm", "--sync", e.image); r.Err != nil {
		t.Errorf("ctr images rm --sync: %v %s", r.Err, r.Stderr)
	}
	if ms := mountsUnder(e.sn.root); len(ms) != 0 {
		t.Errorf("mounts left under the snapshotter's root: %q", ms)
	}
	var left []string
	sn.Walk(ctx, func(_ context.Context, i snapshots.Info) error {
		left = append(left, i.Name)
		return nil
	})
	if len(left) != 0 {
		t.Errorf("snapshots left in the snapshotter: %q", left)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.sn.root, "overlay", "snapshots")); len(ents) != 0 {
		t.Errorf("%d snapshot directories left", len(ents))
	}
	if r := e.ctr("snapshots", "--snapshotter", "oci2", "ls"); strings.Count(strings.TrimSpace(r.Stdout), "\n") != 0 {
		t.Errorf("containerd lists snapshots: %s", r.Stdout)
	}
	waitNoMountProcess(t, e.sn.root)
}

// snapshotterClient talks to oci2-snapshotter's socket directly, beside
// containerd.
func snapshotterClient(t *testing.T, sock string) (snapshots.Snapshotter, func()) {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	return snapshotproxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), "oci2"), func() { conn.Close() }
}

// waitNoMountProcess waits (bounded) until no `oci2 mount` process serves a
// directory under root.
func waitNoMountProcess(t *testing.T, root string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		serving := mountProcesses(root)
		if len(serving) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("oci2 mount processes still serving %v", serving)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mountProcesses returns the live `oci2 mount` processes serving
// directories under root, by directory: each records its mount in
// /run/oci2/mounts until it exits.
func mountProcesses(root string) map[string]int {
	serving := map[string]int{}
	files, _ := filepath.Glob("/run/oci2/mounts/*.json")
	for _, f := range files {
		var st struct {
			PID int    `json:"pid"`
			Dir string `json:"dir"`
		}
		b, _ := os.ReadFile(f)
		if json.Unmarshal(b, &st) == nil && strings.HasPrefix(st.Dir, root+"/") && syscall.Kill(st.PID, 0) == nil {
			serving[st.Dir] = st.PID
		}
	}
	return serving
}

// TestContainerdSnapshotterMountDied: when the process serving an image's
// mount dies (SIGKILL), the next container of the image still starts: the
// snapshotter finds the dead mount under the container's parent, detaches
// it and mounts the image again; removing everything then leaves no mount.
func TestContainerdSnapshotterMountDied(t *testing.T) {
	e := startContainerdOCI2(t, nil)
	procs := mountProcesses(e.sn.root)
	if len(procs) != 1 {
		t.Fatalf("oci2 mount processes %v, want one", procs)
	}
	for dir, pid := range procs {
		syscall.Kill(pid, syscall.SIGKILL)
		deadline := time.Now().Add(30 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); !errors.Is(err, syscall.ENOTCONN) {
			t.Fatalf("after killing its server, statfs of the mount: %v, want ENOTCONN", err)
		}
	}
	r := e.ctr("run", "--rm", "--snapshotter", "oci2", e.image, ctrID("d1"))
	if r.Err != nil || !strings.Contains(r.Stdout, helloOut) {
		t.Fatalf("ctr run after the mount's server died: %v\nstdout: %s\nstderr: %s\nsnapshotter log:\n%s",
			r.Err, r.Stdout, r.Stderr, clip(e.sn.logText()))
	}
	if ms := fuseMountsUnder(e.sn.root); len(ms) != 1 {
		t.Errorf("FUSE mounts %q, want the new one only", ms)
	}
	if r := e.ctr("images", "rm", "--sync", e.image); r.Err != nil {
		t.Errorf("ctr images rm --sync: %v %s", r.Err, r.Stderr)
	}
	if ms := mountsUnder(e.sn.root); len(ms) != 0 {
		t.Errorf("mounts left under the snapshotter's root: %q", ms)
	}
}

// TestContainerdSnapshotterNamespaces: one image imported into two
// containerd namespaces shares one snapshot and one mount; removing it
// from one namespace leaves it running in the other, and removing it
// there too ends the mount.
func TestContainerdSnapshotterNamespaces(t *testing.T) {
	e := startContainerdOCI2(t, nil)
	if r := e.s.run("containerd", "import", "--address", e.ctd.sock, "--namespace", "other", e.image); r.Err != nil {
		t.Fatalf("import into namespace other: %v\n%s", r.Err, r.Stderr)
	}
	t.Cleanup(func() { e.ctr("-n", "other", "images", "rm", "--sync", e.image) })
	if ms := fuseMountsUnder(e.sn.root); len(ms) != 1 {
		t.Errorf("one image in two namespaces: FUSE mounts %q, want one", ms)
	}
	if r := e.ctr("images", "rm", "--sync", e.image); r.Err != nil {
		t.Fatalf("ctr images rm in default: %v %s", r.Err, r.Stderr)
	}
	if ms := fuseMountsUnder(e.sn.root); len(ms) != 1 {
		t.Errorf("removed from one namespace: FUSE mounts %q, want the other's", ms)
	}
	r := e.ctr("-n", "other", "run", "--rm", "--snapshotter", "oci2", e.image, ctrID("ns1"))
	if r.Err != nil || !strings.Contains(r.Stdout, helloOut) {
		t.Fatalf("ctr run in namespace other: %v\nstdout: %s\nstderr: %s", r.Err, r.Stdout, r.Stderr)
	}
	if r := e.ctr("-n", "other", "images", "rm", "--sync", e.image); r.Err != nil {
		t.Errorf("ctr images rm in other: %v %s", r.Err, r.Stderr)
	}
	if ms := mountsUnder(e.sn.root); len(ms) != 0 {
		t.Errorf("removed from both namespaces: mounts left %q", ms)
	}
}
