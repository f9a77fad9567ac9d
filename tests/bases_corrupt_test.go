package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBaseCorruptFrame corrupts one stored frame of an OCIv2 base: the
// build fails with an error naming the base and the frame, and leaves no
// snapshot of the base in BuildKit's cache.
func TestBaseCorruptFrame(t *testing.T) {
	requireRoot(t)
	requireTools(t, "runc", "buildctl", "registry")
	dir := workDir(t)
	_, toml := noRegistryConfig(t)
	d := newBkDaemon(t, dir, []byte(toml))
	seedStoreBase(t, dir, d.store)
	parts := partsOf(t, d.store, "docker.io/t/base:latest")
	var victim string
	var size uint64
	for f, s := range parts.frames {
		p := filepath.Join(d.store, "blobs", "sha256", strings.TrimPrefix(f.String(), "sha256:"))
		if _, err := os.Stat(p); err == nil && s > size {
			victim, size = p, s
		}
	}
	if victim == "" {
		t.Fatal("no frame of the base is stored as a blob")
	}
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(victim, b, 0o644); err != nil {
		t.Fatal(err)
	}
	d.start(t)

	ctx := dockerfileContext(t, "FROM t/base\nRUN true\n", map[string]string{})
	_, r := d.buildctl(t, nil, ctx, "type=local,dest="+t.TempDir())
	if r.Err == nil {
		t.Fatal("a build on a base with a corrupt frame succeeded")
	}
	t.Logf("corrupt frame: %s", errorLine(r.Stderr))
	mentions(t, "corrupt frame", r.Stderr, "oci2 base", filepath.Base(victim)[:12])
	du := mustRun(t, nil, "buildctl", "--addr", d.addr, "du", "-v")
	if strings.Contains(du.Stdout, "oci2 base") {
		t.Errorf("a snapshot of the corrupt base was kept:\n%s", du.Stdout)
	}
}
