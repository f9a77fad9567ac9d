package exporter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/internal/testenv"
)

// TestApplyLayer mounts a real overlayfs of a lower and an upper directory
// and checks that the lower's tree with the upper applied equals a walk of
// the mounted result: whiteouts, opaque directories, type changes, new and
// modified entries, metadata-only changes, hardlinks.
func TestApplyLayer(t *testing.T) {
	testenv.RequireRoot(t, "overlayfs mount, trusted.* xattrs, mknod")
	testenv.RequireFilesystem(t, "overlay")
	base := t.TempDir()
	lower, upper, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "merged")
	for _, d := range []string{lower, upper, merged} {
		must(t, os.Mkdir(d, 0o755))
	}
	w := func(root, p, s string) {
		t.Helper()
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755))
		must(t, os.WriteFile(filepath.Join(root, p), []byte(s), 0o644))
	}
	// lower: a small root filesystem
	for _, p := range []string{"etc/passwd", "etc/motd", "bin/a", "bin/b", "keep/x", "keep/deep/y",
		"gone/1", "gone/2", "opq/old1", "opq/sub/old2", "dir2file/f", "file2dir", "chmod/f", "link/one"} {
		w(lower, p, "lower "+p+"\n")
	}
	must(t, os.Link(filepath.Join(lower, "link/one"), filepath.Join(lower, "link/two")))
	must(t, os.Symlink("a", filepath.Join(lower, "bin/sym")))
	must(t, unix.Setxattr(filepath.Join(lower, "keep/x"), "user.note", []byte("lower"), 0))

	// upper: the layer's changes, as overlayfs records them
	w(upper, "etc/motd", "changed\n")      // modified file
	w(upper, "etc/new", "new\n")           // new file
	w(upper, "newdir/sub/f", "new tree\n") // new directory tree
	must(t, os.Mkdir(filepath.Join(upper, "bin"), 0o755))
	must(t, unix.Mknod(filepath.Join(upper, "bin/a"), unix.S_IFCHR, 0)) // deleted file
	must(t, unix.Mknod(filepath.Join(upper, "gone"), unix.S_IFCHR, 0))  // deleted tree
	must(t, unix.Mknod(filepath.Join(upper, "never"), unix.S_IFCHR, 0)) // whiteout of nothing
	w(upper, "opq/fresh", "fresh\n")                                    // emptied and refilled
	must(t, unix.Setxattr(filepath.Join(upper, "opq"), "trusted.overlay.opaque", []byte("y"), 0))
	w(upper, "dir2file", "now a file\n")
	w(upper, "file2dir/inner", "inner\n")
	must(t, unix.Setxattr(filepath.Join(upper, "file2dir"), "trusted.overlay.opaque", []byte("y"), 0))
	must(t, os.MkdirAll(filepath.Join(upper, "chmod"), 0o755))
	must(t, os.Chmod(filepath.Join(upper, "chmod"), 0o700)) // metadata-only directory change
	must(t, os.Symlink("b", filepath.Join(upper, "bin/sym")))
	w(upper, "link/three", "three\n")
	must(t, os.Link(filepath.Join(upper, "link/three"), filepath.Join(upper, "link/four")))
	must(t, os.Chtimes(filepath.Join(upper, "etc"), refTime, refTime))

	opts := fmt.Sprintf("lowerdir=%s:%s", upper, lower)
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, opts); err != nil {
		// The layer-diff export rests on this mount: a kernel that lists
		// overlay but refuses it is a missing prerequisite, not a pass.
		testenv.Unavailable(t, "overlayfs mount: %v", err)
	}
	defer unix.Unmount(merged, unix.MNT_DETACH)

	ctx := context.Background()
	want, err := writer.FromDir(ctx, merged, writer.DirOptions{})
	must(t, err)
	got, err := writer.FromDir(ctx, lower, writer.DirOptions{})
	must(t, err)
	view, err := writer.NewWalker(merged, writer.DirOptions{})
	must(t, err)
	n, err := applyLayer(ctx, got, upper, view)
	must(t, err)
	if g, w := dump(got), dump(want); g != w {
		t.Errorf("applied layer differs from the walk of the mount:\n--- applied\n%s\n--- walked\n%s", g, w)
	}
	if total := countNodes(want); n >= total {
		t.Errorf("read %d entries, a full walk reads %d", n, total)
	}
}

var refTime = time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.UTC)

// dump lists a tree's entries in order with everything the writer uses.
func dump(root *writer.Node) string {
	var lines []string
	var walk func(n *writer.Node, p string)
	walk = func(n *writer.Node, p string) {
		e := n.Entry
		line := fmt.Sprintf("%s type=%d mode=%o uid=%d gid=%d mtime=%d.%d size=%d target=%q xattrs=%v dev=%d,%d inode=%v",
			p, e.Type, e.Mode, e.UID, e.GID, e.MtimeSec, e.MtimeNsec, e.Size, e.Target, e.Xattrs, e.DevMajor, e.DevMinor, n.Inode != 0)
		if sf, ok := n.Content.(*writer.SourceFile); ok {
			b, _ := os.ReadFile(sf.Path)
			line += fmt.Sprintf(" content=%q", b)
		}
		lines = append(lines, line)
		for _, c := range n.Children {
			walk(c, p+"/"+c.Name)
		}
	}
	walk(root, "")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
