package snapshotter

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"

	"github.com/oci2/oci2/internal/testenv"
)

// tmpfsMounter stands in for `oci2 mount`: a tmpfs holding the image name.
type tmpfsMounter struct {
	mounts, unmounts int
	dirs             []string
	last             Image
}

func (m *tmpfsMounter) Mount(_ context.Context, img Image, dir string) error {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
		return err
	}
	m.mounts++
	m.dirs = append(m.dirs, dir)
	m.last = img
	return os.WriteFile(filepath.Join(dir, "image"), []byte(img.Manifest), 0o644)
}

func (m *tmpfsMounter) Unmount(_ context.Context, dir string) error {
	m.unmounts++
	return syscall.Unmount(dir, 0)
}

const (
	testImage = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	testRef   = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// newTestSnapshotter opens a snapshotter on a new root with a tmpfsMounter.
func newTestSnapshotter(t *testing.T) (*Snapshotter, string, *tmpfsMounter) {
	root, m := t.TempDir(), &tmpfsMounter{}
	s, err := New(context.Background(), root, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, root, m
}

func imageLabels(img string) snapshots.Opt {
	return snapshots.WithLabels(map[string]string{snapshots.LabelSnapshotRef: testRef, LabelImage: img})
}

// TestImageSnapshot: a labelled Prepare commits the image's snapshot,
// mounted once; a container over it sees the image; a restart adopts the
// mount; Remove unmounts; a label that is not a digest is refused.
func TestImageSnapshot(t *testing.T) {
	testenv.RequireRoot(t, "mounts tmpfs and overlayfs")
	ctx := context.Background()
	s, root, m := newTestSnapshotter(t)
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
	defer s.Close()
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

// TestImageSnapshotHostile: labels and keys a client chose cannot steer
// the mount: a source that is not a bare repository name (a flag, a tag, a
// path) is refused, and keys, refs and an upperdir label full of ../ still
// mount inside the snapshotter's root.
func TestImageSnapshotHostile(t *testing.T) {
	testenv.RequireRoot(t, "mounts tmpfs")
	ctx := context.Background()
	s, root, m := newTestSnapshotter(t)
	for _, src := range []string{"--help", "127.0.0.1:5000/app:v1", "127.0.0.1:5000/app@" + testImage, "../../etc", "/etc", "app"} {
		_, err := s.Prepare(ctx, "k-"+src, "", snapshots.WithLabels(map[string]string{
			snapshots.LabelSnapshotRef: testRef, LabelImage: testImage, LabelSource: src}))
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("Prepare with source %q: %v, want invalid argument", src, err)
		}
	}
	if m.mounts != 0 {
		t.Fatalf("refused sources mounted %d times", m.mounts)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	os.Mkdir(outside, 0o755)
	_, err := s.Prepare(ctx, "../../../k", "", snapshots.WithLabels(map[string]string{
		snapshots.LabelSnapshotRef: "../../../ref", LabelImage: testImage,
		LabelSource: "127.0.0.1:5000/oci2/app", labelUpperdir: outside}))
	if !errdefs.IsAlreadyExists(err) {
		t.Fatalf("Prepare with ../ keys: %v, want already exists", err)
	}
	t.Cleanup(func() {
		for _, d := range m.dirs {
			syscall.Unmount(d, syscall.MNT_DETACH)
		}
	})
	real, _ := filepath.EvalSymlinks(root)
	if len(m.dirs) != 1 || !strings.HasPrefix(m.dirs[0], filepath.Join(real, "overlay", "snapshots")+"/") {
		t.Errorf("mounted at %q, want one directory under %s", m.dirs, root)
	}
	if m.last.Source != "127.0.0.1:5000/oci2/app" || m.last.Manifest != testImage {
		t.Errorf("mounted %+v", m.last)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("the upperdir label's directory got %d entries", len(ents))
	}
	if err := s.Remove(ctx, "../../../ref"); err != nil {
		t.Fatal(err)
	}
}

// TestImageSnapshotSymlink: an image snapshot whose directory was swapped
// for a symlink (to a directory outside the root) is not mounted through
// it, neither on restore nor on the next import.
func TestImageSnapshotSymlink(t *testing.T) {
	testenv.RequireRoot(t, "mounts tmpfs")
	ctx := context.Background()
	s, root, m := newTestSnapshotter(t)
	if _, err := s.Prepare(ctx, "import-1", "", imageLabels(testImage)); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("Prepare: %v, want already exists", err)
	}
	info, err := s.Stat(ctx, testRef)
	if err != nil {
		t.Fatal(err)
	}
	dir := info.Labels[labelUpperdir]
	if err := syscall.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, dir); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := New(ctx, root, m) // restore logs the refusal and goes on
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Prepare(ctx, "import-2", "", imageLabels(testImage)); err == nil || errdefs.IsAlreadyExists(err) {
		t.Errorf("Prepare over a symlinked snapshot directory: %v, want a refusal", err)
	}
	for _, d := range m.dirs[1:] {
		syscall.Unmount(d, syscall.MNT_DETACH)
	}
	if m.mounts != 1 {
		t.Errorf("mounted %d times (at %q), want only the first", m.mounts, m.dirs)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("the symlink's target got %d entries", len(ents))
	}
}
