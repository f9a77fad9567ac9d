package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// ctrEnv is a containerd with oci2-snapshotter as its proxy plugin oci2,
// all of it (state, content, snapshots, the snapshotter's store unless
// given) in one scratch directory.
type ctrEnv struct {
	dir, sock, store string
	oci2             string
	procs            []*exec.Cmd // the snapshotter, then containerd
	logFiles         []string
}

// ctrConfig is containerd's configuration: no CRI, the snapshotter as
// proxy plugin oci2.
const ctrConfig = `version = 3
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images", "io.containerd.nri.v1.nri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[proxy_plugins.oci2]
  type = "snapshot"
  address = %q
`

// startCtr starts the snapshotter on store (a fresh one in the
// environment's directory if "") and containerd, and waits (bounded) until
// ctr reaches containerd and containerd the snapshotter.
func (cb *ctrBench) startCtr(ctx context.Context, store string) (*ctrEnv, error) {
	dir := cb.fresh("ctr")
	if store == "" {
		store = filepath.Join(dir, "store")
	}
	e := &ctrEnv{dir: dir, sock: filepath.Join(dir, "containerd.sock"), store: store, oci2: cb.oci2}
	snSock := filepath.Join(dir, "sn.sock")
	if err := e.spawn("oci2-snapshotter", cb.snapshotter, "--address", snSock, "--root", filepath.Join(dir, "sn-root"),
		"--store", store, "--oci2", cb.oci2); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(ctrConfig, filepath.Join(dir, "root"), filepath.Join(dir, "state"), e.sock, e.sock+".ttrpc",
		filepath.Join(dir, "opt"), snSock)
	cfgPath := filepath.Join(dir, "containerd.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		e.close(ctx)
		return nil, err
	}
	if err := e.spawn("containerd", "containerd", "--config", cfgPath); err != nil {
		e.close(ctx)
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := exec.CommandContext(ctx, "ctr", "--address", e.sock, "snapshots", "--snapshotter", "oci2", "ls").Run()
		if err == nil {
			return e, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			e.close(ctx)
			return nil, fmt.Errorf("containerd with oci2-snapshotter not ready after 30 s: %w\n%s", err, e.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// spawn starts a daemon logging to dir/name.log.
func (e *ctrEnv) spawn(name, bin string, args ...string) error {
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(e.dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	e.procs, e.logFiles = append(e.procs, cmd), append(e.logFiles, logPath)
	return nil
}

// logs is the end of each daemon's log, for an error.
func (e *ctrEnv) logs() string {
	var b strings.Builder
	for _, p := range e.logFiles {
		raw, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "--- %s:\n%s\n", filepath.Base(p), tail(string(raw), 1500))
	}
	return b.String()
}

// close removes the images (containerd's gc removes their snapshots, which
// ends the oci2 mounts), stops containerd and then the snapshotter
// (SIGTERM, killed after 20 s), unmounts whatever is left under the
// directory and removes it unless something stays mounted.
func (e *ctrEnv) close(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if len(e.procs) == 2 {
		short, cancel := context.WithTimeout(ctx, time.Minute)
		if out, err := exec.CommandContext(short, "ctr", "--address", e.sock, "images", "ls", "-q").Output(); err == nil {
			for _, name := range strings.Fields(string(out)) {
				exec.CommandContext(short, "ctr", "--address", e.sock, "images", "rm", "--sync", name).Run()
			}
		}
		cancel()
	}
	for _, p := range slices.Backward(e.procs) {
		stopProcess(p)
	}
	mounts := mountsBelow(e.dir)
	for _, m := range mounts {
		short, cancel := context.WithTimeout(ctx, 30*time.Second)
		exec.CommandContext(short, e.oci2, "umount", m).Run()
		cancel()
		unix.Unmount(m, unix.MNT_DETACH)
	}
	if left := mountsBelow(e.dir); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "bench: still mounted, %s kept: %q\n", e.dir, left)
		return
	}
	os.RemoveAll(e.dir)
}

// stopProcess ends a daemon started by spawn: SIGTERM to its process
// group, SIGKILL after 20 s.
func stopProcess(cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// mountsBelow lists the mount points under dir, deepest first.
func mountsBelow(dir string) []string {
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir + "/"))
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range ms {
		if m.Mountpoint != dir {
			out = append(out, m.Mountpoint)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out
}
