package snapshotter

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"

	"github.com/oci2/oci2/internal/testenv"
)

// tmpfsMounter stands in for `oci2 mount`: a tmpfs holding the image name.
type tmpfsMounter struct{ mounts, unmounts int }

func (m *tmpfsMounter) Mount(_ context.Context, image, dir string) error {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
		return err
	}
	m.mounts++
	return os.WriteFile(filepath.Join(dir, "image"), []byte(image), 0o644)
}

func (m *tmpfsMounter) Unmount(_ context.Context, dir string) error {
	m.unmounts++
	return syscall.Unmount(dir, 0)
}

const (
	testImage = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	testRef   = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func imageLabels(img string) snapshots.Opt {
	return snapshots.WithLabels(map[string]string{snapshots.LabelSnapshotRef: testRef, LabelImage: img})
}

// TestImageSnapshot: a labelled Prepare commits the image's snapshot,
// mounted once; a container over it sees the image; a restart adopts the
// mount; Remove unmounts; a label that is not a digest is refused.
func TestImageSnapshot(t *testing.T) {
	testenv.RequireRoot(t, "mounts tmpfs and overlayfs")
	ctx := context.Background()
	root, m := t.TempDir(), &tmpfsMounter{}
	s, err := New(ctx, root, m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Prepare(ctx, "bad", "", imageLabels("--bundle")); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("Prepare with image label --bundle: %v, want invalid argument", err)
	}
	if _, err := s.Stat(ctx, "bad"); !errdefs.IsNotFound(err) {
		t.Errorf("refused Prepare left snapshot 'bad': %v", err)
	}
	for _, key := range []string{"import-1", "import-2"} {
		if _, err := s.Prepare(ctx, key, "", imageLabels(testImage)); !errdefs.IsAlreadyExists(err) {
			t.Fatalf("Prepare %s: %v, want already exists", key, err)
		}
	}
	if m.mounts != 1 {
		t.Errorf("two imports mounted %d times, want once", m.mounts)
	}
	info, err := s.Stat(ctx, testRef)
	if err != nil || info.Kind != snapshots.KindCommitted {
		t.Fatalf("image snapshot: %+v %v", info, err)
	}
	dir := info.Labels[labelUpperdir]
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	// A restart finds the mount there and adopts it.
	s.Close()
	if s, err = New(ctx, root, m); err != nil {
		t.Fatal(err)
	}
	if m.mounts != 1 {
		t.Errorf("restart mounted again (%d mounts)", m.mounts)
	}
	mounts, err := s.Prepare(ctx, "c1", testRef)
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 1 || mounts[0].Type != "overlay" {
		t.Fatalf("container mounts %+v, want one overlay", mounts)
	}
	if !slices.Contains(mounts[0].Options, "lowerdir="+dir) {
		t.Errorf("container overlay options %q, want lowerdir=%s (the image mount)", mounts[0].Options, dir)
	}
	if err := s.Remove(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, testRef); err != nil {
		t.Fatal(err)
	}
	if m.unmounts != 1 {
		t.Errorf("Remove of the image snapshot unmounted %d times, want once", m.unmounts)
	}
}
