package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemon is one buildkitd-oci2 on its own root and socket (OCI worker only,
// an empty config so that the machine's /etc/buildkit does not apply).
type daemon struct {
	buildctl string
	root     string
	addr     string
	log      string
	cmd      *exec.Cmd
	exited   chan error
}

// startDaemon starts bin on dir/root and waits until buildctl reaches it.
func startDaemon(ctx context.Context, bin, buildctl, dir string) (*daemon, error) {
	return startDaemonConfig(ctx, bin, buildctl, dir, "")
}

// startDaemonConfig is startDaemon with conf as its buildkitd.toml.
func startDaemonConfig(ctx context.Context, bin, buildctl, dir, conf string) (*daemon, error) {
	d := &daemon{
		buildctl: buildctl,
		root:     filepath.Join(dir, "root"),
		addr:     "unix://" + filepath.Join(dir, "buildkitd.sock"),
		log:      filepath.Join(dir, "buildkitd.log"),
	}
	confFile := filepath.Join(dir, "buildkitd.toml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(d.log)
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command(bin, "--root", d.root, "--addr", d.addr, "--config", confFile,
		"--oci-worker=true", "--containerd-worker=false")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	d.exited = make(chan error, 1)
	go func() { d.exited <- d.cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c := exec.CommandContext(ctx, buildctl, "--addr", d.addr, "debug", "workers")
		if c.Run() == nil {
			return d, nil
		}
		select {
		case err := <-d.exited:
			d.cmd = nil
			return nil, fmt.Errorf("buildkitd-oci2 exited: %v\n%s", err, d.logTail())
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("buildkitd-oci2 not ready after 60 s\n%s", d.logTail())
		}
	}
}

// stop ends the daemon with SIGTERM (it saves its files cache), killing it
// after 30 s.
func (d *daemon) stop() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
}

func (d *daemon) logTail() string {
	b, _ := os.ReadFile(d.log)
	return tail(string(b), 2000)
}

// resetPeak sets the daemon's VmHWM to its current RSS (clear_refs 5), so
// that peak() covers only what runs after.
func (d *daemon) resetPeak() {
	if d.cmd != nil {
		os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", d.cmd.Process.Pid), []byte("5"), 0o200)
	}
}

// peak is the daemon's VmHWM in bytes (0 if unknown).
func (d *daemon) peak() int64 {
	if d.cmd == nil {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// exportBytes is what exports write inside the daemon root: the oci2 store
// and the worker's content store (snapshots and databases left out: the
// solve writes those, whatever the exporter).
func (d *daemon) exportBytes() int64 {
	var total int64
	for _, sub := range []string{"oci2", "runc-overlayfs/content"} {
		n, _, err := dirSize(filepath.Join(d.root, sub), nil)
		if err == nil {
			total += n
		}
	}
	return total
}

// build is one measured buildctl build.
type build struct {
	Wall   time.Duration // the whole buildctl command
	Export time.Duration // the "exporting to ..." step (0: no exporter)
	// Progress is the --progress rawjson stream (statuses name what the
	// daemon did: "oci2: unpacking", pull summaries).
	Progress []byte
	Err      error
}

// build runs buildctl build of the Dockerfile in dfDir with context ctxDir;
// output "" solves without exporting.
func (d *daemon) build(ctx context.Context, ctxDir, dfDir, output string, extra ...string) build {
	args := []string{"--addr", d.addr, "build", "--progress", "rawjson", "--frontend", "dockerfile.v0",
		"--local", "context=" + ctxDir, "--local", "dockerfile=" + dfDir}
	if output != "" {
		args = append(args, "--output", output)
	}
	args = append(args, extra...)
	c := exec.CommandContext(ctx, d.buildctl, args...)
	var progress bytes.Buffer
	c.Stdout, c.Stderr = io.Discard, &progress
	t0 := time.Now()
	err := c.Run()
	b := build{Wall: time.Since(t0), Progress: progress.Bytes()}
	if err != nil {
		b.Err = fmt.Errorf("buildctl build --output %q: %w\n%s", output, err, tail(progress.String(), 1500))
		return b
	}
	b.Export = exportStep(progress.Bytes())
	if output != "" && b.Export == 0 {
		b.Err = fmt.Errorf("buildctl build --output %q: no \"exporting to\" step in the progress", output)
	}
	return b
}

// exportStep is the duration of the "exporting to ..." vertex in a
// --progress rawjson stream (the last completed one).
func exportStep(raw []byte) time.Duration {
	type vertex struct {
		Name      string     `json:"name"`
		Started   *time.Time `json:"started"`
		Completed *time.Time `json:"completed"`
	}
	var d time.Duration
	for _, line := range bytes.Split(raw, []byte("\n")) {
		var msg struct {
			Vertexes []vertex `json:"vertexes"`
		}
		if json.Unmarshal(line, &msg) != nil {
			continue // not a status message
		}
		for _, v := range msg.Vertexes {
			if strings.HasPrefix(v.Name, "exporting to") && v.Started != nil && v.Completed != nil {
				d = v.Completed.Sub(*v.Started)
			}
		}
	}
	return d
}
