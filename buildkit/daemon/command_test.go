package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"
)

// openWith runs a command with buildkitd's --config and our Flags on args
// and opens its daemon under root.
func openWith(t *testing.T, root string, args ...string) (*Daemon, error) {
	t.Helper()
	var d *Daemon
	var err error
	cmd := &cli.Command{
		Name:  "buildkitd",
		Flags: append([]cli.Flag{&cli.StringFlag{Name: "config"}}, Flags()...),
		Action: func(_ context.Context, c *cli.Command) error {
			d, err = OpenCommand(c, root, nil)
			return nil
		},
	}
	if rerr := cmd.Run(context.Background(), append([]string{"buildkitd"}, args...)); rerr != nil {
		t.Fatal(rerr)
	}
	if d != nil {
		t.Cleanup(func() { d.Close() })
	}
	return d, err
}

// TestOpenCommand: the store is --oci2-store, else [oci2] store, else
// <root>/oci2, and is created; a bad --oci2-base-images is refused before
// any store is made.
func TestOpenCommand(t *testing.T) {
	root := t.TempDir()
	tomlStore := filepath.Join(t.TempDir(), "from-toml")
	cfg := writeTOML(t, "[oci2]\n  store = \""+tomlStore+"\"\n")
	flagStore := filepath.Join(t.TempDir(), "from-flag")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, filepath.Join(root, "oci2")},
		{[]string{"--config", cfg}, tomlStore},
		{[]string{"--config", cfg, "--oci2-store", flagStore}, flagStore},
	} {
		d, err := openWith(t, root, tc.args...)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if d.Store() != tc.want {
			t.Errorf("%q: store %s, want %s", tc.args, d.Store(), tc.want)
		}
		if fi, err := os.Stat(tc.want); err != nil || !fi.IsDir() {
			t.Errorf("%q: store directory: %v", tc.args, err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("%q: Close: %v", tc.args, err)
		}
	}

	bad := filepath.Join(t.TempDir(), "never")
	_, err := openWith(t, root, "--oci2-store", bad, "--oci2-base-images", "yes")
	if err == nil || !strings.Contains(err.Error(), `--oci2-base-images="yes"`) {
		t.Errorf("--oci2-base-images=yes: %v; want an error naming the flag and value", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a refused command made its store %s: %v", bad, err)
	}
}
