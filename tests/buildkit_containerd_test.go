package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBuildKitContainerdWorker runs buildkitd-oci2 with the containerd
// worker only, against a containerd of its own (temporary root, state and
// socket; the runc shim from bin/, Debian's runc), and checks that the
// worker knows the oci2 exporter: examples/Dockerfiles/hello is exported
// to the daemon's store, runs with `oci2 unpack --bundle` and runc, and
// has the root filesystem of BuildKit's type=local export of the same
// build. scripts/build-tools.sh builds containerd and its shim.
func TestBuildKitContainerdWorker(t *testing.T) {
	requireRoot(t)
	requireTools(t, "containerd", "containerd-shim-runc-v2", "runc", "buildctl")
	dir := workDir(t)
	b := makeBases(t, dir)
	const ns = "oci2test"
	// after containerd stops: the shim's runc root for the namespace, if
	// empty (the shared /run/containerd/{fifo,runc,s} are containerd's)
	t.Cleanup(func() { os.Remove(filepath.Join("/run/containerd/runc", ns)) })
	ctd := startContainerd(t, dir)
	d := startBuildkitdContainerd(t, dir, ctd.sock, ns)
	defer func() {
		if t.Failed() {
			t.Logf("containerd log:\n%s", ctd.logTail())
		}
	}()

	// the only worker is containerd's
	w := mustRun(t, nil, "buildctl", "--addr", d.addr, "debug", "workers", "-v").Stdout
	if ex := workerLabels(w, "org.mobyproject.buildkit.worker.executor"); len(ex) != 1 || ex[0] != "containerd" {
		t.Fatalf("workers' executors %q, want [containerd]:\n%s", ex, w)
	}

	e := bkExamples[0] // hello
	if e.name != "hello" {
		t.Fatalf("bkExamples[0] is %s, want hello", e.name)
	}
	name := "docker.io/oci2-test/ctd-hello:latest"
	m := d.mustBuildctl(t, b, e.dir(), "type=oci2,name=oci2-test/ctd-hello")
	if got, _ := m["image.name"].(string); got != name {
		t.Errorf("image.name %q, want %q", got, name)
	}
	st := statsOf(t, m)
	if len(st) != 1 {
		t.Fatalf("oci2.stats: %d platforms, want 1: %+v", len(st), st)
	}
	s := st[0]
	t.Logf("containerd worker: %s, %d files, %d logical bytes, %d frames (%d new), %.2fs; tree: %+v",
		digestOf(t, m), s.Stats.Files, s.Stats.LogicalBytes, s.Stats.Frames, s.Stats.FramesNew, s.Seconds, s.Tree)
	if s.Stats.Files == 0 || s.Stats.LogicalBytes == 0 || s.Stats.Frames == 0 {
		t.Errorf("empty export: %+v", s.Stats)
	}
	if s.Tree.FullWalk != "" {
		// not an error of the export: the exporter walked the whole result
		t.Logf("tree not from layer diffs (full walk): %s", s.Tree.FullWalk)
	} else if s.Tree.Layers < 2 {
		t.Errorf("tree from layer diffs with %d layers, want >= 2 (busybox, COPY, RUN): %+v", s.Tree.Layers, s.Tree)
	}
	if idx := d.storedIndex(t, name); len(idx.Manifests) != 1 {
		t.Errorf("stored index: %+v", idx)
	}

	checkExampleImage(t, d, b, e, "oci2-test/ctd-hello")
}

// workerLabels returns the values of label key in the output of
// `buildctl debug workers -v`, one per worker.
func workerLabels(out, key string) []string {
	var vals []string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), key+":"); ok {
			vals = append(vals, strings.TrimSpace(v))
		}
	}
	return vals
}

// ctdDaemon is a containerd started on a temporary root, state and socket.
type ctdDaemon struct {
	dir  string
	sock string // grpc address (a unix socket path)
	log  string
	cfg  string // its configuration file

	cmd    *exec.Cmd
	exited chan error
}

// startContainerd starts containerd with a minimal configuration (no CRI,
// no NRI, overlayfs snapshotter, everything under dir) and the shim of
// bin/ on its PATH; it stops it, and any shim left, when t ends. extra is
// appended to the configuration (proxy_plugins, say).
func startContainerd(t *testing.T, dir string, extra ...string) *ctdDaemon {
	t.Helper()
	return startContainerdWith(t, dir, `disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.runtime",
  "io.containerd.cri.v1.images",
  "io.containerd.nri.v1.nri",
]
`, extra...)
}

// startContainerdWith is startContainerd with head (which plugins are
// disabled, say) after the root and state lines of the configuration.
func startContainerdWith(t *testing.T, dir, head string, extra ...string) *ctdDaemon {
	t.Helper()
	c := &ctdDaemon{
		dir:  dir,
		sock: filepath.Join(dir, "containerd.sock"),
		log:  filepath.Join(dir, "containerd.log"),
	}
	cfg := fmt.Sprintf(`version = 3
root = %q
state = %q
%s
[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "ctd-root"), filepath.Join(dir, "ctd-state"), head, c.sock,
		c.sock+".ttrpc", filepath.Join(dir, "ctd-opt"))
	cfg += strings.Join(extra, "\n")
	cfgPath := filepath.Join(dir, "containerd.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c.cfg = cfgPath
	t.Cleanup(func() { c.stop(t) })
	c.launch(t)
	return c
}

// launch starts containerd on its configuration and waits (bounded) until
// it has booted; its log is appended to.
func (c *ctdDaemon) launch(t *testing.T) {
	t.Helper()
	shim, err := exec.LookPath("containerd-shim-runc-v2")
	if err != nil {
		t.Fatal(err)
	}
	shim, _ = filepath.Abs(shim)
	logf, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := logf.Stat()
	from := fi.Size() // this start's part of the log
	ctdBin, _ := exec.LookPath("containerd")
	c.cmd = exec.Command(ctdBin, "--config", c.cfg, "--log-level", "debug")
	c.cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(shim)+":"+os.Getenv("PATH"))
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	c.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan error) { exited <- cmd.Wait(); logf.Close() }(c.cmd, c.exited)

	deadline := time.Now().Add(30 * time.Second)
	for {
		raw, _ := os.ReadFile(c.log)
		if int64(len(raw)) > from && bytes.Contains(raw[from:], []byte("containerd successfully booted")) {
			return
		}
		select {
		case err := <-c.exited:
			c.cmd = nil
			t.Fatalf("containerd exited: %v\n%s", err, c.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd not ready after 30 s\n%s", c.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// restart stops containerd (SIGTERM, bounded) and starts it again on the
// same root and state: the shims of running containers stay.
func (c *ctdDaemon) restart(t *testing.T) {
	t.Helper()
	c.terminate()
	c.launch(t)
}

// terminate ends containerd: SIGTERM, SIGKILL after 20 s.
func (c *ctdDaemon) terminate() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
	c.cmd = nil
}

// stop ends containerd (SIGTERM, SIGKILL after 20 s), then any shim it
// started that is still running, and reports mounts left under dir.
func (c *ctdDaemon) stop(t *testing.T) {
	c.terminate()
	for _, pid := range shimsOf(c.sock) {
		t.Errorf("containerd shim %d still running after the test: killing it", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if ms := mountsUnder(c.dir); len(ms) > 0 {
		t.Errorf("mounts left under %s: %q", c.dir, ms)
		for i := len(ms) - 1; i >= 0; i-- {
			syscall.Unmount(ms[i], syscall.MNT_DETACH)
		}
	}
}

func (c *ctdDaemon) logTail() string {
	b, _ := os.ReadFile(c.log)
	return clip(string(b))
}

// shimsOf returns the pids of containerd-shim-runc-v2 processes started by
// the containerd listening on sock (their -address argument).
func shimsOf(sock string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(raw), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "containerd-shim-runc-v2" {
			continue
		}
		for i, a := range args {
			if a == "-address" && i+1 < len(args) && args[i+1] == sock {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// mountsUnder lists the mount points of this mount namespace below dir, in
// mount order.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// unescapeMountinfo undoes the octal escapes (\040 ...) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// startBuildkitdContainerd starts buildkitd-oci2 as startBuildkitd does,
// but with the containerd worker only (containerd at sock, namespace ns).
func startBuildkitdContainerd(t *testing.T, dir, sock, ns string) *bkDaemon {
	t.Helper()
	d := newBkDaemon(t, dir, nil)
	d.startCmd(t, exec.Command(bin(t, "buildkitd-oci2"), d.args("--oci-worker=false",
		"--containerd-worker=true", "--containerd-worker-addr", sock, "--containerd-worker-namespace", ns)...))
	return d
}
