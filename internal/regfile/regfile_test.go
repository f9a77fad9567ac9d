//go:build linux

package regfile_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/internal/regfile"
	"github.com/oci2/oci2/internal/regfile/regfiletest"
)

// TestOpenRefusesBeforeOpening: every kind of non-regular file is refused
// with its kind named, and never opened.
func TestOpenRefusesBeforeOpening(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("fifo", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	root, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, c := range []struct{ name, kind string }{{"fifo", "fifo"}, {"sock", "socket"}, {".", "directory"}} {
		p := filepath.Join(dir, c.name)
		check := regfiletest.WatchOpens(t, p)
		for _, open := range []func() error{
			func() error { _, _, err := regfile.Open(p, true); return err },
			func() error { _, _, err := regfile.OpenInRoot(root, "/"+c.name); return err },
		} {
			err := open()
			if !errors.Is(err, regfile.ErrNotRegular) || !strings.Contains(err.Error(), "("+c.kind+")") {
				t.Errorf("%s: error %v, want %v (%s)", c.name, err, regfile.ErrNotRegular, c.kind)
			}
		}
		check()
	}
	if _, _, err := regfile.Open(filepath.Join(dir, "link"), false); !errors.Is(err, regfile.ErrNotRegular) ||
		!strings.Contains(err.Error(), "(symlink)") {
		t.Errorf("final symlink without follow: %v, want %v (symlink)", err, regfile.ErrNotRegular)
	}
	if _, _, err := regfile.OpenInRoot(root, "link"); !errors.Is(err, regfile.ErrNotRegular) {
		t.Errorf("symlink to a fifo in root: %v, want %v", err, regfile.ErrNotRegular)
	}
}

func TestOpenReadsRegular(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, st, err := regfile.Open(filepath.Join(dir, "f"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if string(b) != "hello" || err != nil || st.Size != 5 {
		t.Errorf("read %q, %v, size %d", b, err, st.Size)
	}
}
