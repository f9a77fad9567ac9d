package tests

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/image/mountfs"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/internal/refname"
	"github.com/oci2/oci2/internal/testenv"
	"github.com/oci2/oci2/store/framesource"
	"github.com/oci2/oci2/store/local"
)

// unmountTimeout bounds an unmount in cleanup before a lazy detach.
const unmountTimeout = 10 * time.Second

// mountInProcess mounts image name of the store at storeDir on a fresh
// directory with mountfs (served by this test process) and unmounts it when
// the test ends.
func mountInProcess(t *testing.T, storeDir, name string) (string, *mountfs.FS) {
	t.Helper()
	testenv.RequireRoot(t, "FUSE mounts without fusermount")
	testenv.RequireFUSE(t)
	ctx := t.Context()
	st, err := local.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := refname.Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	md, err := reader.Resolve(ctx, st, st, ref.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err := reader.Open(ctx, st, md)
	if err != nil {
		t.Fatal(err)
	}
	cr := reader.NewChunkReader(img, framesource.New(st, nil))
	fsys, err := mountfs.Load(context.Background(), img, cr, cr, mountfs.Options{
		ReadError: func(ino uint64, err error) { t.Errorf("read of inode %d: %v", ino, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	base := workDir(t)
	dir := filepath.Join(base, "mnt")
	if err := os.Chmod(base, 0o755); err != nil { // other users reach the mount
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := fsys.Mount(dir, mountfs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmount(t, dir, srv) })
	return dir, fsys
}

// unmount ends a mount, detaching it lazily when it stays busy.
func unmount(t testing.TB, dir string, srv *fuse.Server) {
	done := make(chan error, 1)
	go func() { done <- srv.Unmount() }()
	select {
	case err := <-done:
		if err == nil {
			return
		}
		t.Logf("unmount %s: %v; detaching", dir, err)
	case <-time.After(unmountTimeout):
		t.Logf("unmount %s: still busy after %v; detaching", dir, unmountTimeout)
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
		t.Errorf("lazy unmount %s: %v", dir, err)
	}
}
