package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// probeSource writes a file and sleeps, or says whether a file exists, or
// prints one or its size: what a test asks of a running container.
const probeSource = `package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	switch os.Args[1] {
	case "write":
		err := os.WriteFile(os.Args[2], []byte("c1"), 0o644)
		fmt.Printf("written err=%v\n", err)
		time.Sleep(10 * time.Minute)
	case "check":
		_, err := os.Stat(os.Args[2])
		fmt.Printf("exists=%v\n", err == nil)
	case "cat":
		b, err := os.ReadFile(os.Args[2])
		fmt.Printf("content=%q err=%v\n", b, err)
	case "read":
		b, err := os.ReadFile(os.Args[2])
		fmt.Printf("read=%d err=%v\n", len(b), err)
	}
}
`

// TestContainerdSnapshotterShare: two containers of one imported image
// share its one FUSE mount, and a file one writes is invisible to the
// other; killing the snapshotter while a container runs leaves it running
// and reading the image, and a new container starts after the restart;
// removing the container and the image leaves no mount and no snapshot.
func TestContainerdSnapshotterShare(t *testing.T) {
	e := startContainerdOCI2(t, func(src string) {
		buildStatic(t, probeSource, filepath.Join(src, "bin/probe"))
		os.Chmod(filepath.Join(src, "tmp"), 0o1777) // the image's user is not root
	})
	ctr := e.ctr
	img := e.image
	c1 := startProbe(t, e, "c1")
	r := ctr("run", "--rm", "--snapshotter", "oci2", img, ctrID("c2"), "/bin/probe", "check", "/tmp/written")
	if r.Err != nil || !strings.Contains(r.Stdout, "exists=false") {
		t.Errorf("c2 sees c1's /written, or failed: %v %q %s", r.Err, r.Stdout, r.Stderr)
	}
	if ms := fuseMountsUnder(e.sn.root); len(ms) != 1 {
		t.Errorf("two containers of one image: FUSE mounts %q, want one", ms)
	}

	e.sn.stop(t, syscall.SIGKILL)
	if out := c1.exec(t, "/bin/probe", "cat", "/etc/oci2-marker"); !strings.Contains(out, `content="x" err=<nil>`) {
		t.Errorf("c1 reading the image with the snapshotter dead: %q", out)
	}
	e.sn.start(t)
	e.awaitSnapshotter(t)
	c1.checkRunning(t, "after the snapshotter restart")
	r = ctr("run", "--rm", "--snapshotter", "oci2", img, ctrID("c3"))
	if r.Err != nil || !strings.Contains(r.Stdout, "hello from oci2 uid=1234") {
		t.Errorf("c3 after the restart: %v %q %s", r.Err, r.Stdout, r.Stderr)
	}

	c1.remove(t)
	if r := ctr("images", "rm", "--sync", img); r.Err != nil {
		t.Errorf("ctr images rm --sync: %v %s", r.Err, r.Stderr)
	}
	if ms := fuseMountsUnder(e.sn.root); len(ms) != 0 {
		t.Errorf("after removing the container and the image, FUSE mounts %q", ms)
	}
	if ls := ctr("snapshots", "--snapshotter", "oci2", "ls").Stdout; strings.Contains(ls, "sha256:") || strings.Contains(ls, c1.id) {
		t.Errorf("snapshots left: %s", ls)
	}
}

// probeCtr is a running container of the image's /bin/probe that wrote
// /tmp/written and sleeps.
type probeCtr struct {
	e     *ctdOCI2
	id    string
	execs int
}

// startProbe starts probeCtr name (`ctr run -d`), waits (bounded) until it
// has written its file, and kills and removes it when t ends.
func startProbe(t *testing.T, e *ctdOCI2, name string) *probeCtr {
	t.Helper()
	// runc's state (/run/containerd/runc/default) is the host's: ids of
	// this process only.
	p := &probeCtr{e: e, id: ctrID(name)}
	if r := e.ctr("run", "-d", "--snapshotter", "oci2", e.image, p.id, "/bin/probe", "write", "/tmp/written"); r.Err != nil {
		t.Fatalf("ctr run -d %s: %v\n%s\n%s", name, r.Err, r.Stderr, clip(e.sn.logText()))
	}
	t.Cleanup(func() {
		e.ctr("task", "kill", "-s", "SIGKILL", p.id)
		for i := 0; i < 100 && strings.Contains(e.ctr("task", "ls").Stdout, p.id); i++ {
			e.ctr("task", "rm", "-f", p.id)
			time.Sleep(100 * time.Millisecond)
		}
		e.ctr("containers", "rm", p.id)
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.exec(t, "/bin/probe", "check", "/tmp/written"), "exists=true") {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not write /tmp/written within 30 s", name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return p
}

// exec runs args in the container (ctr task exec, bounded by ctr's
// timeout) and returns the output.
func (p *probeCtr) exec(t *testing.T, args ...string) string {
	t.Helper()
	p.execs++
	r := p.e.ctr(append([]string{"task", "exec", "--exec-id", fmt.Sprintf("x%d", p.execs), p.id}, args...)...)
	if r.Err != nil {
		t.Fatalf("ctr task exec %s %q: %v\n%s", p.id, args, r.Err, r.Stderr)
	}
	return r.Stdout
}

// checkRunning fails the test unless containerd lists the task running.
func (p *probeCtr) checkRunning(t *testing.T, when string) {
	t.Helper()
	for _, l := range strings.Split(p.e.ctr("task", "ls").Stdout, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == p.id && f[2] == "RUNNING" {
			return
		}
	}
	t.Errorf("%s not running %s: %s", p.id, when, p.e.ctr("task", "ls").Stdout)
}

// remove kills the task (waiting, bounded, until it stops) and removes it
// and the container.
func (p *probeCtr) remove(t *testing.T) {
	t.Helper()
	ctr := p.e.ctr
	ctr("task", "kill", "-s", "SIGKILL", p.id)
	for i := 0; i < 100 && !strings.Contains(ctr("task", "ls").Stdout, "STOPPED"); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if r := ctr("task", "rm", p.id); r.Err != nil {
		t.Errorf("ctr task rm %s: %v %s", p.id, r.Err, r.Stderr)
	}
	if r := ctr("containers", "rm", p.id); r.Err != nil {
		t.Errorf("ctr containers rm %s: %v %s", p.id, r.Err, r.Stderr)
	}
}

// ctrID is a container id unique to this test process.
func ctrID(name string) string { return fmt.Sprintf("oci2-%s-%d", name, os.Getpid()) }
