package tests

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/internal/testenv"
)

// capSource prints its uid and effective capabilities: run as a non-root
// user, it has CAP_NET_BIND_SERVICE only when the kernel honoured its
// security.capability xattr at exec.
const capSource = `package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	b, _ := os.ReadFile("/proc/self/status")
	eff := "?"
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			eff = strings.TrimSpace(v)
		}
	}
	_, err := os.Stat("/etc/oci2-marker")
	fmt.Printf("hello from an oci2 mount uid=%d marker=%v CapEff=%s\n", os.Getuid(), err == nil, eff)
}
`

// requireMount skips (fails in CI) unless this machine can run oci2 mount.
func requireMount(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t, "FUSE and overlay mounts")
	testenv.RequireFUSE(t)
}

// mountCLI runs `oci2 mount args... dir` and registers its unmount (with a
// bounded lazy detach of whatever is left) for the end of the test.
func mountCLI(t *testing.T, s *store, dir string, args ...string) {
	t.Helper()
	t.Cleanup(func() {
		if !mounted(t, dir) && !mounted(t, filepath.Join(dir, "lower")) {
			return // the test unmounted it
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if r := run(ctx, s.env, bin(t, "oci2"), "--store", s.dir, "umount", dir); r.Err != nil {
			t.Logf("oci2 umount %s: %v\n%s", dir, r.Err, r.Stderr)
			for _, d := range []string{filepath.Join(dir, "rootfs"), filepath.Join(dir, "lower"), dir} {
				unix.Unmount(d, unix.MNT_DETACH)
			}
		}
	})
	s.must(append(append([]string{"mount"}, args...), dir)...)
}

// mounted reports whether dir is a mount point in /proc/self/mounts.
func mounted(t *testing.T, dir string) bool {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(" "+dir+" "))
}

// TestMountCLI: `oci2 mount` returns with the mount ready and serving from
// the background, by name and by digest; `oci2 umount` ends it (mount gone,
// process gone); --foreground serves until interrupted and then unmounts.
func TestMountCLI(t *testing.T) {
	requireMount(t)
	dir, src, s, d := smallImage(t, "small:v1")
	want := snapshot(t, src)

	for _, name := range []string{"small:v1", d} {
		mnt := filepath.Join(dir, "mnt")
		mkdirT(t, mnt)
		mountCLI(t, s, mnt, name)
		compareTrees(t, want, snapshot(t, mnt), compareOptions{SkipRoot: true})
		s.must("umount", mnt)
		if mounted(t, mnt) {
			t.Fatalf("%s still mounted after oci2 umount", mnt)
		}
		if ents, _ := os.ReadDir(mnt); len(ents) != 0 {
			t.Errorf("after umount %s holds %d entries", mnt, len(ents))
		}
	}

	// --foreground: serves until SIGTERM, then unmounts and exits 0.
	mnt := filepath.Join(dir, "fg")
	mkdirT(t, mnt)
	cmd := exec.Command(bin(t, "oci2"), "--store", s.dir, "mount", "--foreground", "small:v1", mnt)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); unix.Unmount(mnt, unix.MNT_DETACH) })
	deadline := time.Now().Add(30 * time.Second)
	for !mounted(t, mnt) {
		if time.Now().After(deadline) {
			t.Fatalf("--foreground did not mount within 30 s: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	compareTrees(t, want, snapshot(t, mnt), compareOptions{SkipRoot: true})
	cmd.Process.Signal(syscall.SIGTERM)
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Errorf("--foreground after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("--foreground did not exit within 30 s of SIGTERM")
	}
	if mounted(t, mnt) {
		t.Errorf("--foreground left %s mounted", mnt)
	}

	// A missing image fails before anything is mounted.
	if r := s.run("mount", "nope:v1", mnt); r.Err == nil || !strings.Contains(r.Stderr, "nope") || mounted(t, mnt) {
		t.Errorf("mount of a missing image: %v\n%s", r.Err, r.Stderr)
	}
}

// TestMountBundleRunc: `oci2 mount --bundle` gives a bundle that `runc run`
// starts straight from the FUSE mount (through the overlay): the image
// config's user and entrypoint apply, and a file capability of the image
// takes effect at exec.
func TestMountBundleRunc(t *testing.T) {
	dir, src := runcSource(t, "bin", "etc", "work", "tmp", "proc", "dev", "sys")
	buildStatic(t, capSource, filepath.Join(src, "bin/capcheck"))
	if err := unix.Setxattr(filepath.Join(src, "bin/capcheck"), "security.capability", capNetBind(), 0); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "etc/oci2-marker"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(src, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345::/work:/bin/capcheck\n"), 0o644)
	os.WriteFile(filepath.Join(src, "etc/group"), []byte("root:x:0:\napp:x:2345:\n"), 0o644)
	s := newStore(t, filepath.Join(dir, "store"))
	s.create(src, "capcheck:v1", "--entrypoint", "/bin/capcheck", "--user", "app", "--workdir", "/work")

	bundle := filepath.Join(dir, "bundle")
	mountCLI(t, s, bundle, "--bundle", "capcheck:v1")
	// runc's default spec sets no_new_privs, under which the kernel grants
	// no file capabilities at all; clear it to see the xattr at work.
	cfgPath := filepath.Join(bundle, "config.json")
	var cfg map[string]any
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["process"].(map[string]any)["noNewPrivileges"] = false
	raw, _ = json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	state := filepath.Join(dir, "runc-state")
	for i := range 2 { // one mount serves any number of containers
		id := fmt.Sprintf("oci2-mount-test-%d-%d", os.Getpid(), i)
		r := run(t.Context(), nil, "runc", "--root", state, "run", "--bundle", bundle, id)
		run(t.Context(), nil, "runc", "--root", state, "delete", "--force", id)
		if r.Err != nil {
			t.Fatalf("runc run: %v\nstdout: %s\nstderr: %s", r.Err, r.Stdout, r.Stderr)
		}
		want := "hello from an oci2 mount uid=1234 marker=true CapEff=0000000000000400"
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("runc output %q, want %q", r.Stdout, want)
		}
	}
	s.must("umount", bundle)
	for _, d := range []string{"rootfs", "lower"} {
		if mounted(t, filepath.Join(bundle, d)) {
			t.Errorf("%s still mounted after oci2 umount", d)
		}
	}
}

// capNetBind is a security.capability value (revision 2, effective)
// granting CAP_NET_BIND_SERVICE, which runc's default bounding set keeps (a
// file asking for more than the bounding set fails exec with EPERM).
func capNetBind() []byte {
	v := make([]byte, 20)
	binary.LittleEndian.PutUint32(v[0:], 0x02000000|1)
	binary.LittleEndian.PutUint32(v[4:], 1<<10)
	return v
}

// runcSource checks what running a mounted bundle needs and returns a work
// directory and, in it, a source tree with the given directories.
func runcSource(t *testing.T, dirs ...string) (dir, src string) {
	t.Helper()
	requireMount(t)
	testenv.RequireFilesystem(t, "overlay")
	testenv.RequireTools(t, "runc")
	dir = workDir(t)
	src = filepath.Join(dir, "rootfs-src")
	for _, d := range dirs {
		mkdirT(t, filepath.Join(src, d))
	}
	return dir, src
}

func mkdirT(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// buildStatic compiles a one-file Go program with CGO_ENABLED=0 to dst.
func buildStatic(t testing.TB, source, dst string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module prog\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t.Context(), []string{"CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off"}, "go", "-C", dir, "build", "-trimpath", "-o", dst, ".")
	if r.Err != nil {
		t.Fatalf("building %s: %v\n%s", dst, r.Err, r.Stderr)
	}
}

// argsSource prints its arguments and exits with their count.
const argsSource = `package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("args=%q\n", os.Args[1:])
	os.Exit(len(os.Args) - 1)
}
`

// TestMountRun: `oci2 run --rm IMAGE CMD ARGS` runs CMD in the image
// straight from a mount, passes its output through, exits with its exit
// code, and leaves no mount and (with --rm) no bundle behind.
func TestMountRun(t *testing.T) {
	dir, src := runcSource(t, "bin", "etc", "proc", "dev", "sys")
	buildStatic(t, argsSource, filepath.Join(src, "bin/args"))
	s := newStore(t, filepath.Join(dir, "store"))
	s.create(src, "args:v1", "--entrypoint", "/bin/args")

	r := s.run("run", "--rm", "args:v1", "/bin/args", "one", "two", "--three")
	var ee *exec.ExitError
	if !errors.As(r.Err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("oci2 run: %v, want exit status 3\n%s", r.Err, r.Stderr)
	}
	if want := `args=["one" "two" "--three"]`; !strings.Contains(r.Stdout, want) {
		t.Errorf("oci2 run printed %q, want %q", r.Stdout, want)
	}
	if r := s.run("run", "--rm", "args:v1"); r.Err != nil || !strings.Contains(r.Stdout, "args=[]") {
		t.Errorf("oci2 run of the image's own process: %v, %q\n%s", r.Err, r.Stdout, r.Stderr)
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.HasPrefix(l, "args:v1 ") { // the FUSE mount's source is the image's name
			t.Errorf("oci2 run left a mount behind: %s", l)
		}
	}
}
