package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// helloSource is a static program that reports what the runtime gave it.
const helloSource = `package main

import (
	"fmt"
	"os"
)

func main() {
	wd, _ := os.Getwd()
	host, _ := os.Hostname()
	_, err := os.Stat("/etc/oci2-marker")
	fmt.Printf("hello from oci2 uid=%d gid=%d cwd=%s marker=%v args=%q env=%s host=%t\n",
		os.Getuid(), os.Getgid(), wd, err == nil, os.Args[1:], os.Getenv("OCI2_TEST"), host != "")
}
`

// buildStaticHello compiles helloSource with CGO_ENABLED=0 to dst.
func buildStaticHello(t testing.TB, dst string) { buildStatic(t, helloSource, dst) }

// runtimeConfig is the part of a bundle's config.json the test reads.
type runtimeConfig struct {
	Process struct {
		Terminal bool     `json:"terminal"`
		Args     []string `json:"args"`
		Env      []string `json:"env"`
		Cwd      string   `json:"cwd"`
		User     struct {
			UID uint32 `json:"uid"`
			GID uint32 `json:"gid"`
		} `json:"user"`
	} `json:"process"`
	Root struct {
		Path string `json:"path"`
	} `json:"root"`
}

// TestUnpackBundleRunc: a tree with a static binary becomes an image whose
// `unpack --bundle` runc starts, with the image config's entrypoint, env,
// user and working directory.
func TestUnpackBundleRunc(t *testing.T) {
	requireRoot(t)
	requireTools(t, "runc")
	dir := workDir(t)
	src := helloTree(t, filepath.Join(dir, "rootfs-src"))

	s := newStore(t, filepath.Join(dir, "store"))
	args := createConfigFlags(t, s)
	d, _ := s.create(src, "hello:latest", args...)
	t.Logf("image %s", d)

	bundle := filepath.Join(dir, "bundle")
	s.must("unpack", "--bundle", "hello", bundle)
	fi, err := os.Stat(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("bundle directory mode %v, want 0700", fi.Mode().Perm())
	}
	raw, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg runtimeConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	if _, err := os.Stat(filepath.Join(bundle, cfg.Root.Path, "bin/hello")); err != nil {
		t.Fatalf("bundle root %q lacks bin/hello: %v", cfg.Root.Path, err)
	}
	want := "hello from oci2 uid=1234 gid=2345 cwd=/work marker=true args=[\"a b\" \"c\"] env=yes"
	if len(args) == 0 {
		// No config flags on `create`: run the binary by patching args.
		t.Logf("oci2 create has no --entrypoint/--user flags; patching config.json process.args")
		cfg.Process.Args = []string{"/bin/hello", "a b", "c"}
		patchProcess(t, filepath.Join(bundle, "config.json"), cfg.Process.Args)
		want = `hello from oci2 uid=0 gid=0 cwd=/ marker=true args=["a b" "c"]`
	}
	if cfg.Process.Terminal {
		t.Errorf("config.json has process.terminal=true: runc cannot start it without a tty")
	}

	id := fmt.Sprintf("oci2-test-%d", os.Getpid())
	r := run(t.Context(), nil, "runc", "--root", filepath.Join(dir, "runc-state"), "run", "--bundle", bundle, id)
	defer run(t.Context(), nil, "runc", "--root", filepath.Join(dir, "runc-state"), "delete", "--force", id)
	if r.Err != nil {
		t.Fatalf("runc run: %v\nstdout: %s\nstderr: %s\nconfig.json process: %+v", r.Err, r.Stdout, r.Stderr, cfg.Process)
	}
	if !strings.Contains(r.Stdout, want) {
		t.Errorf("runc output %q, want it to contain %q", r.Stdout, want)
	}
	t.Logf("runc: %s", strings.TrimSpace(r.Stdout))
}

// helloTree writes at src a root filesystem whose /bin/hello is the static
// helloSource, with a user app (1234:2345) and /etc/oci2-marker.
func helloTree(t testing.TB, src string) string {
	t.Helper()
	for _, d := range []string{"bin", "etc", "work", "tmp", "proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	buildStaticHello(t, filepath.Join(src, "bin/hello"))
	os.WriteFile(filepath.Join(src, "etc/oci2-marker"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(src, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345::/work:/bin/hello\n"), 0o644)
	os.WriteFile(filepath.Join(src, "etc/group"), []byte("root:x:0:\napp:x:2345:\n"), 0o644)
	return src
}

// createConfigFlags returns create flags that set the image config, when
// the CLI has them (entrypoint, cmd, user, workdir, env).
func createConfigFlags(t testing.TB, s *store) []string {
	help := s.run("create", "--help").Stdout
	var args []string
	for _, f := range []struct{ flag, value string }{
		{"--entrypoint", "/bin/hello"},
		{"--cmd", "a b"},
		{"--cmd", "c"},
		{"--user", "app"},
		{"--workdir", "/work"},
		{"--env", "OCI2_TEST=yes"},
	} {
		if !strings.Contains(help, f.flag+" ") && !strings.Contains(help, f.flag+"=") {
			return nil
		}
		args = append(args, f.flag, f.value)
	}
	return args
}

// patchProcess rewrites config.json's process.args in place.
func patchProcess(t testing.TB, path string, args []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	proc, _ := m["process"].(map[string]any)
	if proc == nil {
		t.Fatalf("config.json has no process")
	}
	proc["args"] = args
	raw, _ = json.Marshal(m)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
