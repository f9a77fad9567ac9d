package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/distribution/reference"
	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/snapshotter/importspec"
)

// LabelImage and LabelSource are importspec's, here for the snapshotter's
// users.
const (
	LabelImage  = importspec.LabelImage
	LabelSource = importspec.LabelSource
)

// labelUpperdir is where the overlay snapshotter (WithUpperdirLabel) says a
// snapshot's directory is: the mount point of an image snapshot.
const labelUpperdir = "containerd.io/snapshot/overlay.upperdir"

// Image is what an image snapshot mounts: a manifest of the store, or of
// the registry repository Source, fetched lazily.
type Image struct {
	Manifest digest.Digest
	Source   string // "" : the store holds the whole image
}

// Mounter serves an image read-only at dir, from a process that outlives
// the caller, and ends that.
type Mounter interface {
	Mount(ctx context.Context, img Image, dir string) error
	Unmount(ctx context.Context, dir string) error
}

// Snapshotter is the overlay snapshotter with OCIv2 image snapshots.
type Snapshotter struct {
	snapshots.Snapshotter
	root string // absolute, without symlinks
	m    Mounter
	mu   sync.Mutex // serializes the creation and removal of image snapshots
}

// New opens the snapshotter whose state is under root and adopts the image
// mounts of its committed snapshots, remounting those that are gone.
func New(ctx context.Context, root string, m Mounter) (*Snapshotter, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	root, err := filepath.Abs(root)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshotter root: %w", err)
	}
	ov, err := overlay.NewSnapshotter(filepath.Join(root, "overlay"), overlay.WithUpperdirLabel)
	if err != nil {
		return nil, fmt.Errorf("overlay snapshotter under %s: %w", root, err)
	}
	s := &Snapshotter{Snapshotter: ov, root: root, m: m}
	if err := s.restore(ctx); err != nil {
		ov.Close()
		return nil, err
	}
	return s, nil
}

// Prepare creates, for a Prepare labelled with an image and a target ref,
// the image's committed snapshot named ref (mounted), and answers
// AlreadyExists as containerd expects of a remote snapshotter; any other
// Prepare is the overlay snapshotter's.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	var info snapshots.Info
	for _, o := range opts {
		if err := o(&info); err != nil {
			return nil, err
		}
	}
	img := info.Labels[LabelImage]
	if img == "" {
		return s.prepareLayer(ctx, key, parent, opts...)
	}
	ref := info.Labels[snapshots.LabelSnapshotRef]
	if ref == "" || parent != "" {
		return nil, fmt.Errorf("snapshot %q of oci2 image %s: needs label %s and no parent: %w",
			key, img, snapshots.LabelSnapshotRef, errdefs.ErrInvalidArgument)
	}
	if _, err := imageOf(info.Labels); err != nil {
		return nil, fmt.Errorf("snapshot %q: %w", key, err)
	}
	if err := s.commitImage(ctx, key, ref, img, opts); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("image snapshot %q: %w", ref, errdefs.ErrAlreadyExists)
}

// commitImage makes the committed snapshot ref of image img, with its
// mount, unless it exists (then it makes sure it is mounted).
func (s *Snapshotter) commitImage(ctx context.Context, key, ref, img string, opts []snapshots.Opt) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info, err := s.Snapshotter.Stat(ctx, ref); err == nil {
		if info.Labels[LabelImage] != img {
			return fmt.Errorf("snapshot %q exists and is not of oci2 image %s: %w", ref, img, errdefs.ErrAlreadyExists)
		}
		return s.ensureMounted(ctx, info)
	}
	if _, err := s.Snapshotter.Prepare(ctx, key, "", opts...); err != nil {
		return err
	}
	// Committed while its directory is empty: Commit measures the usage of
	// the directory, which would walk the whole image through FUSE.
	if err := s.Snapshotter.Commit(ctx, ref, key, opts...); err != nil {
		s.Snapshotter.Remove(ctx, key)
		return err
	}
	info, err := s.Snapshotter.Stat(ctx, ref)
	if err == nil {
		err = s.ensureMounted(ctx, info)
	}
	if err != nil {
		s.Snapshotter.Remove(ctx, ref)
		return fmt.Errorf("mounting oci2 image %s: %w", img, err)
	}
	log.G(ctx).Infof("oci2 image %s mounted as snapshot %s", img, ref)
	return nil
}

// ensureMounted mounts the image of snapshot info on its directory unless
// a live mount is there; a mount whose server died is detached first.
func (s *Snapshotter) ensureMounted(ctx context.Context, info snapshots.Info) error {
	dir := info.Labels[labelUpperdir]
	if dir == "" {
		return fmt.Errorf("snapshot %q: the overlay snapshotter gave no directory", info.Name)
	}
	mounted, live, err := mountedAt(dir)
	if err != nil {
		return fmt.Errorf("snapshot %q: %w", info.Name, err)
	}
	if live {
		return nil
	}
	if mounted {
		log.G(ctx).Warnf("mount of snapshot %s at %s is dead: remounting", info.Name, dir)
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("detaching the dead mount at %s: %w", dir, err)
		}
	}
	if err := s.inRoot(dir); err != nil {
		return fmt.Errorf("snapshot %q: %w", info.Name, err)
	}
	img, err := imageOf(info.Labels)
	if err != nil {
		return fmt.Errorf("snapshot %q: %w", info.Name, err)
	}
	return s.m.Mount(ctx, img, dir)
}

// mountedAt says whether dir is a mount point and whether its server
// answers. statfs reaches a FUSE server every time, while stat is answered
// from the kernel's attribute cache (kept forever for an immutable image):
// a mount whose server died fails statfs with ENOTCONN.
func mountedAt(dir string) (mounted, live bool, err error) {
	mounted, err = mountinfo.Mounted(dir)
	if errors.Is(err, syscall.ENOTCONN) {
		return true, false, nil
	}
	if err != nil || !mounted {
		return false, false, err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); errors.Is(err, syscall.ENOTCONN) {
		return true, false, nil
	} else if err != nil {
		return true, false, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return true, true, nil
}

// imageOf reads an image snapshot's labels. They become arguments of the
// Mounter: only a digest and a bare repository name, never a path, an
// option or a flag a client chose.
func imageOf(labels map[string]string) (Image, error) {
	d, err := digest.Parse(labels[LabelImage])
	if err != nil {
		return Image{}, fmt.Errorf("label %s=%q is not a manifest digest: %w",
			LabelImage, labels[LabelImage], errdefs.ErrInvalidArgument)
	}
	img := Image{Manifest: d, Source: labels[LabelSource]}
	if img.Source == "" {
		return img, nil
	}
	named, err := reference.ParseNormalizedNamed(img.Source)
	if err != nil || !reference.IsNameOnly(named) || named.Name() != img.Source {
		return Image{}, fmt.Errorf("label %s=%q is not a normalized repository name (host/path, no tag or digest): %w",
			LabelSource, img.Source, errdefs.ErrInvalidArgument)
	}
	return img, nil
}

// inRoot refuses a mount point that is not a real directory of the
// snapshotter's own (the overlay snapshotter's snapshots/ID/fs): whatever
// the labels or keys a client sent, nothing is mounted elsewhere.
func (s *Snapshotter) inRoot(dir string) error {
	base := filepath.Join(s.root, "overlay", "snapshots") + string(filepath.Separator)
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("mount point %s: %w", dir, err)
	}
	if filepath.Clean(dir) != dir || real != dir || !strings.HasPrefix(dir, base) {
		return fmt.Errorf("mount point %s is not a directory under %s: refused", dir, base)
	}
	return nil
}

// Remove unmounts an image snapshot before the overlay snapshotter removes
// its directory.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, err := s.Snapshotter.Stat(ctx, key)
	if err == nil && info.Kind == snapshots.KindCommitted && info.Labels[LabelImage] != "" {
		if err := s.unmount(ctx, info.Labels[labelUpperdir]); err != nil {
			return fmt.Errorf("unmounting snapshot %q: %w", key, err)
		}
	}
	return s.Snapshotter.Remove(ctx, key)
}

// unmount ends the image mount at dir, if any; a dead one is detached.
func (s *Snapshotter) unmount(ctx context.Context, dir string) error {
	mounted, live, err := mountedAt(dir)
	if err != nil || !mounted {
		return err
	}
	if live {
		return s.m.Unmount(ctx, dir)
	}
	return syscall.Unmount(dir, syscall.MNT_DETACH)
}

// Prepare of a container layer (not an image snapshot) first makes sure
// the image mount under it is live.
func (s *Snapshotter) prepareLayer(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	if err := s.remountParent(ctx, parent); err != nil {
		return nil, err
	}
	return s.Snapshotter.Prepare(ctx, key, parent, opts...)
}

// View is the overlay snapshotter's, over a live image mount.
func (s *Snapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	if err := s.remountParent(ctx, parent); err != nil {
		return nil, err
	}
	return s.Snapshotter.View(ctx, key, parent, opts...)
}

// remountParent mounts the image again when parent is an image snapshot
// whose mount's server died: containers running on the dead mount keep
// failing reads (ENOTCONN), new ones get the new mount.
func (s *Snapshotter) remountParent(ctx context.Context, parent string) error {
	if parent == "" {
		return nil
	}
	info, err := s.Snapshotter.Stat(ctx, parent)
	if err != nil || info.Kind != snapshots.KindCommitted || info.Labels[LabelImage] == "" {
		return nil // not an image snapshot; the overlay snapshotter reports a missing one
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureMounted(ctx, info); err != nil {
		return fmt.Errorf("remounting image snapshot %q: %w", parent, err)
	}
	return nil
}

// restore adopts or remounts the mounts of every committed image snapshot.
func (s *Snapshotter) restore(ctx context.Context) error {
	var infos []snapshots.Info
	err := s.Snapshotter.Walk(ctx, func(_ context.Context, i snapshots.Info) error {
		if i.Kind == snapshots.KindCommitted && i.Labels[LabelImage] != "" {
			infos = append(infos, i)
		}
		return nil
	})
	if err != nil && !errdefs.IsNotFound(err) { // a new root has no bucket yet
		return fmt.Errorf("listing snapshots: %w", err)
	}
	for _, i := range infos {
		if err := s.ensureMounted(ctx, i); err != nil {
			// One broken image must not keep the others from running.
			log.G(ctx).WithError(err).Errorf("restoring the mount of snapshot %s", i.Name)
		}
	}
	return nil
}
