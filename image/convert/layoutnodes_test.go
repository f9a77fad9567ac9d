//go:build linux

package convert

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/internal/regfile"
	"github.com/oci2/oci2/internal/regfile/regfiletest"
)

// TestLayoutNodesNeverOpened: a source layout whose index.json, manifest
// or layer blob is a fifo is refused before the fifo is opened (before
// issue 14 it was opened non-blocking and then refused; a device node
// would have reached its driver).
func TestLayoutNodesNeverOpened(t *testing.T) {
	ents := []ent{reg("f", "hello", 0o644)}
	for _, which := range []string{"index.json", "manifest", "layer"} {
		t.Run(which, func(t *testing.T) {
			l := newTestLayout(t)
			desc := l.image([]layer{{ents: ents, comp: "gzip"}}, nil)
			l.tag("", desc)
			p := filepath.Join(l.dir, "index.json")
			switch which {
			case "manifest":
				p = filepath.Join(l.dir, "blobs", "sha256", desc.Digest.Encoded())
			case "layer":
				var m struct{ Layers []struct{ Digest string } }
				b, _ := os.ReadFile(filepath.Join(l.dir, "blobs", "sha256", desc.Digest.Encoded()))
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				p = filepath.Join(l.dir, "blobs", "sha256", strings.TrimPrefix(m.Layers[0].Digest, "sha256:"))
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			check := regfiletest.WatchOpens(t, p)
			_, err := load(t, "oci:"+l.dir, ImportOptions{TempDir: t.TempDir()})
			if !errors.Is(err, regfile.ErrNotRegular) || !strings.Contains(err.Error(), "(fifo)") {
				t.Errorf("import: %v, want %v (fifo)", err, regfile.ErrNotRegular)
			}
			check()
		})
	}
}
