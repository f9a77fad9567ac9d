package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oci2/oci2/internal/testenv"
)

// snDaemon is a running oci2-snapshotter.
type snDaemon struct {
	sock, root, store, log string
	cmd                    *exec.Cmd
	exited                 chan error
}

// startSnapshotter starts oci2-snapshotter on dir/oci2-snapshotter.sock
// and waits (bounded) for its socket.
func startSnapshotter(t *testing.T, dir, store string) *snDaemon {
	t.Helper()
	d := &snDaemon{sock: filepath.Join(dir, "oci2-snapshotter.sock"), root: filepath.Join(dir, "sn-root"),
		store: store, log: filepath.Join(dir, "oci2-snapshotter.log")}
	d.start(t)
	return d
}

func (d *snDaemon) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin(t, "oci2-snapshotter"), "--address", d.sock, "--root", d.root,
		"--store", d.store, "--oci2", bin(t, "oci2"), "--log-level", "debug")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	d.exited = make(chan error, 1)
	go func(cmd *exec.Cmd) { d.exited <- cmd.Wait(); logf.Close() }(d.cmd)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(d.logText(), "serving snapshots on") {
		select {
		case err := <-d.exited:
			d.cmd = nil
			t.Fatalf("oci2-snapshotter exited: %v\n%s", err, d.logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("oci2-snapshotter not ready after 30 s\n%s", d.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends sig and waits (bounded) for the snapshotter to end.
func (d *snDaemon) stop(t *testing.T, sig syscall.Signal) error {
	if d.cmd == nil {
		return nil
	}
	d.cmd.Process.Signal(sig)
	var err error
	select {
	case err = <-d.exited:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		err = fmt.Errorf("still running 20 s after signal %v: killed", sig)
		<-d.exited
	}
	d.cmd = nil
	return err
}

func (d *snDaemon) logText() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

// proxyPlugin is the containerd configuration of the snapshotter.
func proxyPlugin(sock string) string {
	return fmt.Sprintf("\n[proxy_plugins.oci2]\n  type = \"snapshot\"\n  address = %q\n", sock)
}

// TestContainerdSnapshotterRun: an OCIv2 image of the store, imported into
// a real containerd with `oci2 containerd import`, runs with `ctr run
// --snapshotter oci2` from its FUSE mount (no layer unpacked); after the
// snapshotter is killed and restarted a second container of it runs, and
// removing the image releases the mount.
func TestContainerdSnapshotterRun(t *testing.T) {
	requireRoot(t)
	requireTools(t, "containerd", "containerd-shim-runc-v2", "ctr", "runc")
	testenv.RequireFUSE(t)
	dir := workDir(t)
	src := helloTree(t, filepath.Join(dir, "rootfs-src"))
	s := newStore(t, filepath.Join(dir, "store"))
	args := createConfigFlags(t, s)
	if len(args) == 0 {
		t.Fatal("oci2 create lacks the image config flags this test needs")
	}
	s.create(src, "hello:latest", args...)

	sn := startSnapshotter(t, dir, s.dir)
	t.Cleanup(func() { sn.stop(t, syscall.SIGTERM) })
	ctd := startContainerd(t, dir, proxyPlugin(sn.sock))
	ctr := func(args ...string) result {
		return run(t.Context(), nil, "ctr", append([]string{"--address", ctd.sock}, args...)...)
	}
	t.Cleanup(func() { releaseImage(t, ctr, sn) })

	imp := s.run("containerd", "import", "--address", ctd.sock, "hello:latest")
	if imp.Err != nil {
		t.Fatalf("oci2 containerd import: %v\n%s\nsnapshotter log:\n%s", imp.Err, imp.Stderr, clip(sn.logText()))
	}
	mounts := fuseMountsUnder(sn.root)
	if len(mounts) != 1 {
		t.Fatalf("after import, FUSE mounts under the snapshotter root %q, want one", mounts)
	}
	want := "hello from oci2 uid=1234 gid=2345 cwd=/work marker=true args=[\"a b\" \"c\"] env=yes"
	runHello := func(id string) {
		t.Helper()
		r := ctr("run", "--rm", "--snapshotter", "oci2", "hello:latest", id)
		if r.Err != nil || !strings.Contains(r.Stdout, want) {
			t.Fatalf("ctr run %s: %v\nstdout: %s\nstderr: %s\nsnapshotter log:\n%s\ncontainerd log:\n%s",
				id, r.Err, r.Stdout, r.Stderr, clip(sn.logText()), ctd.logTail())
		}
		t.Logf("ctr run %s: %s", id, strings.TrimSpace(r.Stdout))
	}
	runHello("oci2-c1")

	// A killed snapshotter leaves the mount to its own process; the next
	// start adopts it rather than mounting a second time.
	sn.stop(t, syscall.SIGKILL)
	sn.start(t)
	runHello("oci2-c2")
	if got := fuseMountsUnder(sn.root); len(got) != 1 || got[0] != mounts[0] {
		t.Errorf("after a restart, FUSE mounts %q, want the adopted %q", got, mounts)
	}
	if r := ctr("snapshots", "--snapshotter", "oci2", "ls"); !strings.Contains(r.Stdout, "sha256:") {
		t.Errorf("ctr snapshots ls lists no image snapshot: %s %s", r.Stdout, r.Stderr)
	}
	releaseImage(t, ctr, sn)
	if got := fuseMountsUnder(sn.root); len(got) != 0 {
		t.Errorf("after ctr images rm --sync, FUSE mounts left: %q", got)
	}
	if err := sn.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("oci2-snapshotter on SIGTERM: %v\n%s", err, clip(sn.logText()))
	}
}

// releaseImage removes the image (gc removes its snapshot, which ends the
// mount) and unmounts whatever FUSE mount is left under the snapshotter.
func releaseImage(t *testing.T, ctr func(...string) result, sn *snDaemon) {
	if sn.cmd != nil {
		ctr("images", "rm", "--sync", "hello:latest")
	}
	for _, m := range fuseMountsUnder(sn.root) {
		run(t.Context(), nil, bin(t, "oci2"), "umount", m)
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// fuseMountsUnder lists the FUSE mount points below dir.
func fuseMountsUnder(dir string) []string {
	var out []string
	for _, m := range mountsUnder(dir) {
		var st syscall.Statfs_t
		// FUSE_SUPER_MAGIC; a dead FUSE mount fails with ENOTCONN.
		if err := syscall.Statfs(m, &st); err == syscall.ENOTCONN || err == nil && st.Type == 0x65735546 {
			out = append(out, m)
		}
	}
	return out
}
