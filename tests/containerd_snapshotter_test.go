package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oci2/oci2/internal/testenv"
)

// snDaemon is a running oci2-snapshotter.
type snDaemon struct {
	sock, root, store, log string
	args                   []string // more flags
	env                    []string // added to the environment
	cmd                    *exec.Cmd
	exited                 chan error
}

// start starts oci2-snapshotter on d.sock and waits (bounded) for it.
func (d *snDaemon) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--address", d.sock, "--root", d.root, "--store", d.store, "--oci2", bin(t, "oci2"), "--log-level", "debug"}
	d.cmd = exec.Command(bin(t, "oci2-snapshotter"), append(args, d.args...)...)
	d.cmd.Env = append(os.Environ(), d.env...)
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

// proxyPlugin is the containerd configuration of the snapshotter, with
// the transfer service's unpack entries (what `ctr images pull/import
// --snapshotter oci2` unpack ordinary images through) for it besides the
// default overlayfs.
func proxyPlugin(sock string) string {
	return fmt.Sprintf(`
[proxy_plugins.oci2]
  type = "snapshot"
  address = %[1]q

[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = %[2]q
  snapshotter = "overlayfs"
  differ = "walking"

[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = %[2]q
  snapshotter = "oci2"
  differ = "walking"
`, sock, runtime.GOOS+"/"+runtime.GOARCH)
}

// TestContainerdSnapshotterRun: an OCIv2 image of the store, imported into
// a real containerd with `oci2 containerd import`, runs with `ctr run
// --snapshotter oci2` from its FUSE mount (no layer unpacked); after the
// snapshotter is killed and restarted a second container of it runs, and
// removing the image releases the mount.
func TestContainerdSnapshotterRun(t *testing.T) {
	e := startContainerdOCI2(t, nil)
	sn, ctd, ctr := e.sn, e.ctd, e.ctr
	mounts := fuseMountsUnder(sn.root)
	if len(mounts) != 1 {
		t.Fatalf("after import, FUSE mounts under the snapshotter root %q, want one", mounts)
	}
	want := "hello from oci2 uid=1234 gid=2345 cwd=/work marker=true args=[\"a b\" \"c\"] env=yes"
	runHello := func(id string) {
		t.Helper()
		start := time.Now()
		r := ctr("run", "--rm", "--snapshotter", "oci2", "hello:latest", id)
		took := time.Since(start) // a figure for the log, not asserted
		if r.Err != nil || !strings.Contains(r.Stdout, want) {
			t.Fatalf("ctr run %s: %v\nstdout: %s\nstderr: %s\nsnapshotter log:\n%s\ncontainerd log:\n%s",
				id, r.Err, r.Stdout, r.Stderr, clip(sn.logText()), ctd.logTail())
		}
		t.Logf("ctr run %s (%v): %s", id, took.Round(time.Millisecond), strings.TrimSpace(r.Stdout))
	}
	runHello(ctrID("c1"))

	// A killed snapshotter leaves the mount to its own process; the next
	// start adopts it rather than mounting a second time.
	sn.stop(t, syscall.SIGKILL)
	sn.start(t)
	e.awaitSnapshotter(t)
	runHello(ctrID("c2"))
	if got := fuseMountsUnder(sn.root); len(got) != 1 || got[0] != mounts[0] {
		t.Errorf("after a restart, FUSE mounts %q, want the adopted %q", got, mounts)
	}
	if r := ctr("snapshots", "--snapshotter", "oci2", "ls"); !strings.Contains(r.Stdout, "sha256:") {
		t.Errorf("ctr snapshots ls lists no image snapshot: %s %s", r.Stdout, r.Stderr)
	}
	releaseImage(t, ctr, sn, e.image)
	if got := fuseMountsUnder(sn.root); len(got) != 0 {
		t.Errorf("after ctr images rm --sync, FUSE mounts left: %q", got)
	}
	if err := sn.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("oci2-snapshotter on SIGTERM: %v\n%s", err, clip(sn.logText()))
	}
}

// ctdOCI2 is a containerd with oci2-snapshotter and an imported image
// hello:latest of the store s.
type ctdOCI2 struct {
	s     *store
	sn    *snDaemon
	ctd   *ctdDaemon
	ctr   func(args ...string) result
	image string // the imported image's containerd name
}

// startContainerdOCI2 makes the image of helloTree (plus what more adds to
// the tree), starts the snapshotter and containerd with it as a proxy
// plugin, and imports the image; the image is removed and every mount
// ended when t ends.
func startContainerdOCI2(t *testing.T, more func(src string)) *ctdOCI2 {
	t.Helper()
	requireRoot(t)
	requireTools(t, "containerd", "containerd-shim-runc-v2", "ctr", "runc")
	testenv.RequireFUSE(t)
	dir := workDir(t)
	src := helloTree(t, filepath.Join(dir, "rootfs-src"))
	if more != nil {
		more(src)
	}
	s := newStore(t, filepath.Join(dir, "store"))
	s.create(src, "hello:latest", helloConfig(t, s)...)
	e := startOCI2Containerd(t, dir, s, nil)
	e.importImage(t, "hello:latest")
	return e
}

// helloConfig returns the create flags of helloTree's image config.
func helloConfig(t *testing.T, s *store) []string {
	args := createConfigFlags(t, s)
	if len(args) == 0 {
		t.Fatal("oci2 create lacks the image config flags this test needs")
	}
	return args
}

// startOCI2Containerd starts oci2-snapshotter on store s (with more
// flags snArgs) and containerd with it as the proxy plugin oci2; both are
// stopped, and the imported image removed, when t ends.
func startOCI2Containerd(t *testing.T, dir string, s *store, snArgs []string) *ctdOCI2 {
	t.Helper()
	return startOCI2ContainerdWith(t, dir, s, snArgs, func(extra string) *ctdDaemon { return startContainerd(t, dir, extra) })
}

// startOCI2ContainerdWith is startOCI2Containerd with containerd started
// by start, given the snapshotter's configuration.
func startOCI2ContainerdWith(t *testing.T, dir string, s *store, snArgs []string, start func(extra string) *ctdDaemon) *ctdOCI2 {
	t.Helper()
	e := &ctdOCI2{s: s}
	e.sn = &snDaemon{sock: filepath.Join(dir, "oci2-snapshotter.sock"), root: filepath.Join(dir, "sn-root"),
		store: s.dir, log: filepath.Join(dir, "oci2-snapshotter.log"), args: snArgs, env: s.env}
	e.sn.start(t)
	t.Cleanup(func() { e.sn.stop(t, syscall.SIGTERM) })
	e.ctd = start(proxyPlugin(e.sn.sock))
	// Not t.Context(): cleanups call it after that is cancelled.
	e.ctr = func(args ...string) result {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return run(ctx, nil, "ctr", append([]string{"--address", e.ctd.sock}, args...)...)
	}
	t.Cleanup(func() { releaseImage(t, e.ctr, e.sn, e.image) })
	return e
}

// importImage runs `oci2 containerd import` of name (with more flags).
func (e *ctdOCI2) importImage(t *testing.T, name string, more ...string) {
	t.Helper()
	e.image = name
	start := time.Now()
	imp := e.s.run(append(append([]string{"containerd", "import", "--address", e.ctd.sock}, more...), name)...)
	t.Logf("oci2 containerd import: %v (mount included)", time.Since(start).Round(time.Millisecond))
	if imp.Err != nil {
		t.Fatalf("oci2 containerd import: %v\n%s\nsnapshotter log:\n%s", imp.Err, imp.Stderr, clip(e.sn.logText()))
	}
}

// awaitSnapshotter waits (bounded) until containerd reaches a restarted
// snapshotter: its proxy connection redials with a backoff of up to 3 s.
func (e *ctdOCI2) awaitSnapshotter(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := e.ctr("snapshots", "--snapshotter", "oci2", "ls")
		if r.Err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd does not reach the restarted snapshotter: %v %s", r.Err, r.Stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// releaseImage removes the image (gc removes its snapshot, which ends the
// mount) and unmounts whatever FUSE mount is left under the snapshotter.
func releaseImage(t *testing.T, ctr func(...string) result, sn *snDaemon, image string) {
	if sn.cmd != nil && image != "" {
		ctr("images", "rm", "--sync", image)
	}
	for _, m := range fuseMountsUnder(sn.root) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		run(ctx, nil, bin(t, "oci2"), "umount", m)
		cancel()
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
