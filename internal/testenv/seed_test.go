package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// TestSeedReplays: $OCI2_TEST_SEED fixes the seed, so a logged seed replays.
func TestSeedReplays(t *testing.T) {
	t.Setenv(EnvSeed, "20261203")
	if got := Seed(t); got != 20261203 {
		t.Fatalf("Seed with $%s=20261203 returned %d", EnvSeed, got)
	}
}

// TestSeedRejectsGarbage: a mistyped seed fails rather than silently
// replaying a different run.
func TestSeedRejectsGarbage(t *testing.T) {
	t.Setenv(EnvSeed, "12x")
	r := &recorder{TB: t}
	func() {
		defer func() { recover() }()
		Seed(r)
	}()
	if !r.failed || !strings.Contains(r.msg, EnvSeed) {
		t.Fatalf("Seed with $%s=12x: failed=%v %q", EnvSeed, r.failed, r.msg)
	}
}

// recorder records Fatalf instead of stopping the test.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}
