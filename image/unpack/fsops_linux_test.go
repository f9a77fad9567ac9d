//go:build linux

package unpack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNoFollow checks the unpacker's own guard, independent of the tree
// checks of package reader: a symlink already in the destination (here
// "a" -> the outside directory) is never traversed.
func TestNoFollow(t *testing.T) {
	top := t.TempDir()
	dest, outside := filepath.Join(top, "dest"), filepath.Join(top, "outside")
	for _, d := range []string{filepath.Join(dest, "d"), filepath.Join(outside, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(outside, "etc", "passwd"), []byte("x"), 0o644)
	os.Symlink(outside, filepath.Join(dest, "a"))
	os.Symlink("/", filepath.Join(dest, "d", "up"))
	rootfd, err := unix.Open(dest, dirFlags, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rootfd)
	dfd, err := openDirAt(rootfd, "d", dirFlags)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)

	for _, comps := range [][]string{{"a"}, {"a", "etc"}, {"d", "up"}, {"d", "up", "etc"}, {".."}, {"d", ".."}} {
		if fd, err := openPath(rootfd, comps); err == nil {
			unix.Close(fd)
			t.Errorf("openPath(%q) succeeded", comps)
		}
	}
	u := &unpacker{rootfd: rootfd, opts: Options{Force: true}}
	for _, target := range []string{"a/etc/passwd", "d/up/etc/passwd", "a", "../outside/etc/passwd"} {
		err := u.link(dfd, "h", target)
		if err == nil {
			t.Errorf("hardlink to %q succeeded", target)
		}
		if _, err := os.Lstat(filepath.Join(dest, "d", "h")); err == nil {
			t.Errorf("hardlink to %q created d/h", target)
		}
	}
	// Creating a directory where a symlink is: Force replaces the link.
	fd, err := u.mkdir(rootfd, "a")
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if fi, err := os.Lstat(filepath.Join(dest, "a")); err != nil || !fi.IsDir() {
		t.Errorf("a: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(outside, "etc", "passwd")); err != nil {
		t.Errorf("outside touched: %v", err)
	}
	// Without Force the same is an error.
	os.Symlink(outside, filepath.Join(dest, "b"))
	u.opts.Force = false
	if _, err := u.mkdir(rootfd, "b"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("mkdir over a symlink without Force: %v", err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a\x00"} {
		if err := checkName(bad); err == nil {
			t.Errorf("checkName(%q) passed", bad)
		}
	}
}
