package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/cmd/buildkitd/config"
)

func writeTOML(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "buildkitd.toml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The [oci2] table sits in the same buildkitd.toml as upstream's keys:
// upstream's loader must accept the file and keep its own keys, ours reads
// only [oci2].
func TestConfigOCI2Table(t *testing.T) {
	p := writeTOML(t, `
root = "/var/lib/bk"
[worker.oci]
  enabled = true
[oci2]
  store = "/srv/oci2"
  keep-bytes = "10GB"
  keep-duration = "48h"
`)
	up, err := config.LoadFile(p)
	if err != nil {
		t.Fatalf("upstream loader: %v", err)
	}
	if up.Root != "/var/lib/bk" || up.Workers.OCI.Enabled == nil || !*up.Workers.OCI.Enabled {
		t.Errorf("upstream config lost its keys: root %q", up.Root)
	}
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	// buildkitd reads "GB" as GiB
	if c.Store != "/srv/oci2" || c.KeepBytes.Bytes != 10<<30 || c.KeepDuration.Duration != 48*time.Hour {
		t.Errorf("got %+v", c)
	}
}

func TestConfigOCI2Errors(t *testing.T) {
	c, err := LoadConfig(filepath.Join(t.TempDir(), "missing.toml"))
	if err != nil || c != (Config{}) {
		t.Errorf("missing file: %+v, %v", c, err)
	}
	c, err = LoadConfig(writeTOML(t, "root = \"/x\"\n"))
	if err != nil || c != (Config{}) {
		t.Errorf("no [oci2] table: %+v, %v", c, err)
	}
	for _, tc := range []struct{ toml, want string }{
		{"[oci2]\n  stroe = \"/x\"\n", "valid keys: store, keep-bytes, keep-duration"},
		{"[oci2]\n  keep-duration = \"forever\"\n", "[oci2]"},
		{"[oci2]\n  keep-bytes = \"lots\"\n", "[oci2]"},
	} {
		_, err := LoadConfig(writeTOML(t, tc.toml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.toml, err, tc.want)
		}
	}
}
