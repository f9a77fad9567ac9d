package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oci2/oci2/internal/testenv"
)

// binDir holds the binaries built by TestMain; buildErr records, per
// command, why it could not be built (a test needing it fails with that).
var (
	binDir   string
	buildErr = map[string]string{}
)

// commands built by TestMain (every directory under cmd/).
func commands() []string {
	ents, _ := os.ReadDir("../cmd")
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestMain builds every command into a temporary directory, unless
// OCI2_TEST_BIN names a directory of binaries built already (`make build`),
// which is how the tests run as an unprivileged user without a Go cache.
func TestMain(m *testing.M) {
	if d := os.Getenv("OCI2_TEST_BIN"); d != "" {
		binDir = d
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "oci2-tests-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests:", err)
		os.Exit(2)
	}
	binDir = dir
	for _, name := range commands() {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr[name] = fmt.Sprintf("%v\n%s", err, out)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// bin returns the path of a binary built from cmd/name, failing t if it
// did not build.
func bin(t testing.TB, name string) string {
	t.Helper()
	if msg, ok := buildErr[name]; ok {
		t.Fatalf("cmd/%s does not build:\n%s", name, msg)
	}
	p := filepath.Join(binDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("cmd/%s was not built: %v", name, err)
	}
	return p
}

// unavailable, requireRoot and requireTools are internal/testenv's: a missing
// prerequisite skips on a developer machine and fails under CI=true.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	testenv.Unavailable(t, format, args...)
}

func requireRoot(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t, "devices, ownership, mounts and runc bundles")
}

func requireTools(t testing.TB, names ...string) {
	t.Helper()
	testenv.RequireTools(t, names...)
}

// workDir returns a fresh directory on a disk-backed filesystem (/var/tmp
// unless OCI2_TEST_TMP is set: /tmp may be a tmpfs without user xattrs),
// removed when the test ends.
func workDir(t testing.TB) string {
	t.Helper()
	base := os.Getenv("OCI2_TEST_TMP")
	if base == "" {
		base = "/var/tmp"
	}
	d, err := os.MkdirTemp(base, "oci2-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(d); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	return d
}

// result of one command run.
type result struct {
	Stdout, Stderr string
	Err            error
	Elapsed        time.Duration
}

// run executes name args with extra environment, with a generous timeout.
func run(ctx context.Context, env []string, name string, args ...string) result {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err := cmd.Run()
	return result{Stdout: out.String(), Stderr: errb.String(), Err: err, Elapsed: time.Since(t0)}
}

// mustRun runs a command and fails t with its output if it fails.
func mustRun(t testing.TB, env []string, name string, args ...string) result {
	t.Helper()
	r := run(t.Context(), env, name, args...)
	if r.Err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), r.Err,
			clip(r.Stdout), clip(r.Stderr))
	}
	return r
}

// clip keeps error output readable.
func clip(s string) string {
	const max = 8000
	if len(s) > max {
		return s[:max/2] + "\n...\n" + s[len(s)-max/2:]
	}
	return s
}
