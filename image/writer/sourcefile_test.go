//go:build linux

package writer_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/internal/regfile"
	"github.com/oci2/oci2/internal/regfile/regfiletest"
)

// TestSourceFileNeverOpensSwappedNode: a regular file replaced after the
// walk by a fifo, or by a symlink to one, is refused before it is opened
// (the fifo would have been opened, non-blocking, and only then refused).
func TestSourceFileNeverOpensSwappedNode(t *testing.T) {
	for _, swap := range []string{"fifo", "symlink to a fifo"} {
		t.Run(swap, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			if err := os.MkdirAll(src, 0o755); err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(src, "f")
			if err := os.WriteFile(f, []byte("data"), 0o644); err != nil {
				t.Fatal(err)
			}
			root, err := writer.FromDir(t.Context(), src, writer.DirOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sf := root.Children[0].Content.(*writer.SourceFile)
			fifo := filepath.Join(dir, "fifo")
			if err := unix.Mkfifo(fifo, 0o644); err != nil {
				t.Fatal(err)
			}
			if swap == "fifo" {
				err = os.Rename(fifo, f)
				fifo = f
			} else {
				os.Remove(f)
				err = os.Symlink(fifo, f)
			}
			if err != nil {
				t.Fatal(err)
			}
			check := regfiletest.WatchOpens(t, fifo)
			_, err = sf.Open()
			if !errors.Is(err, regfile.ErrNotRegular) || !strings.Contains(err.Error(), "no longer a regular file") {
				t.Errorf("Open: %v, want %v", err, regfile.ErrNotRegular)
			}
			check()
		})
	}
}
