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
	img := "hello:latest"
	// runc's state (/run/containerd/runc/default) is the host's: ids of
	// this process only.
	c1, c2, c3 := ctrID("c1"), ctrID("c2"), ctrID("c3")
	if r := ctr("run", "-d", "--snapshotter", "oci2", img, c1, "/bin/probe", "write", "/tmp/written"); r.Err != nil {
		t.Fatalf("ctr run -d c1: %v\n%s\n%s", r.Err, r.Stderr, clip(e.sn.logText()))
	}
	t.Cleanup(func() {
		ctr("task", "kill", "-s", "SIGKILL", c1)
		for i := 0; i < 100 && strings.Contains(ctr("task", "ls").Stdout, c1); i++ {
			ctr("task", "rm", "-f", c1)
			time.Sleep(100 * time.Millisecond)
		}
		ctr("containers", "rm", c1)
	})
	exec := func(id string, args ...string) string {
		t.Helper()
		r := ctr(append([]string{"task", "exec", "--exec-id", id, c1}, args...)...)
		if r.Err != nil {
			t.Fatalf("ctr task exec c1 %q: %v\n%s", args, r.Err, r.Stderr)
		}
		return r.Stdout
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; !strings.Contains(exec("w"+string(rune('a'+i%26)), "/bin/probe", "check", "/tmp/written"), "exists=true"); i++ {
		if time.Now().After(deadline) {
			t.Fatal("c1 did not write /written within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := ctr("run", "--rm", "--snapshotter", "oci2", img, c2, "/bin/probe", "check", "/tmp/written")
	if r.Err != nil || !strings.Contains(r.Stdout, "exists=false") {
		t.Errorf("c2 sees c1's /written, or failed: %v %q %s", r.Err, r.Stdout, r.Stderr)
	}
	if ms := fuseMountsUnder(e.sn.root); len(ms) != 1 {
		t.Errorf("two containers of one image: FUSE mounts %q, want one", ms)
	}

	e.sn.stop(t, syscall.SIGKILL)
	if out := exec("after-kill", "/bin/probe", "cat", "/etc/oci2-marker"); !strings.Contains(out, `content="x" err=<nil>`) {
		t.Errorf("c1 reading the image with the snapshotter dead: %q", out)
	}
	e.sn.start(t)
	e.awaitSnapshotter(t)
	if ls := ctr("task", "ls").Stdout; !strings.Contains(ls, "RUNNING") {
		t.Errorf("c1 not running after the snapshotter restart: %s", ls)
	}
	r = ctr("run", "--rm", "--snapshotter", "oci2", img, c3)
	if r.Err != nil || !strings.Contains(r.Stdout, "hello from oci2 uid=1234") {
		t.Errorf("c3 after the restart: %v %q %s", r.Err, r.Stdout, r.Stderr)
	}

	ctr("task", "kill", "-s", "SIGKILL", c1)
	for i := 0; i < 100 && !strings.Contains(ctr("task", "ls").Stdout, "STOPPED"); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if r := ctr("task", "rm", c1); r.Err != nil {
		t.Errorf("ctr task rm c1: %v %s", r.Err, r.Stderr)
	}
	if r := ctr("containers", "rm", c1); r.Err != nil {
		t.Errorf("ctr containers rm c1: %v %s", r.Err, r.Stderr)
	}
	if r := ctr("images", "rm", "--sync", img); r.Err != nil {
		t.Errorf("ctr images rm --sync: %v %s", r.Err, r.Stderr)
	}
	if ms := fuseMountsUnder(e.sn.root); len(ms) != 0 {
		t.Errorf("after removing the container and the image, FUSE mounts %q", ms)
	}
	if ls := ctr("snapshots", "--snapshotter", "oci2", "ls").Stdout; strings.Contains(ls, "sha256:") || strings.Contains(ls, c1) {
		t.Errorf("snapshots left: %s", ls)
	}
}

// ctrID is a container id unique to this test process.
func ctrID(name string) string { return fmt.Sprintf("oci2-%s-%d", name, os.Getpid()) }
