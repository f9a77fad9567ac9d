package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InCI reports whether missing prerequisites must fail rather than skip
// (.ci/run exports CI=true; so do CI systems).
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips t with the reason, or fails it under CI. The message of a
// skip starts with "unavailable:" so .ci/run's skip report can tell a missing
// prerequisite from a conformance case a backend does not claim.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := "unavailable: " + fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true: prerequisites must be present)", msg)
	}
	t.Skip(msg)
}

// RequireRoot skips (fails in CI) unless the test runs as root; why says
// what root is needed for.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root (%s)", why)
	}
}

// RequireTools skips (fails in CI) unless every named command is on PATH,
// and returns their paths in order.
func RequireTools(t testing.TB, names ...string) []string {
	t.Helper()
	paths := make([]string, len(names))
	for i, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			Unavailable(t, "%s not found on PATH (.ci/run installs or builds it)", n)
		}
		paths[i] = p
	}
	return paths
}

// RequireFilesystem skips (fails in CI) unless /proc/filesystems lists fs
// (overlay, fuse): the kernel feature a test mounts.
func RequireFilesystem(t testing.TB, fs string) {
	t.Helper()
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		Unavailable(t, "reading /proc/filesystems: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == fs {
			return
		}
	}
	Unavailable(t, "the kernel has no %s filesystem", fs)
}

// RequireFUSE skips (fails in CI) unless /dev/fuse exists and the kernel
// has FUSE.
func RequireFUSE(t testing.TB) {
	t.Helper()
	RequireFilesystem(t, "fuse")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		Unavailable(t, "no /dev/fuse: %v", err)
	}
}
