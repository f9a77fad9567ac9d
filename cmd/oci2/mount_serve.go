package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/hanwen/go-fuse/v2/fuse"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/mountfs"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/unpack"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/transfer"
)

// unmountWait bounds how long an unmount waits for a busy mount before
// detaching it lazily (a serving process must never leave a dead mount).
const unmountWait = 10 * time.Second

// serveMount loads the image, mounts it (and the bundle's overlay), reports
// ready and serves until the mount goes away or ctx ends.
func (a *app) serveMount(ctx context.Context, f mountFlags, arg, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	li, err := a.loadMount(ctx, f, arg)
	if err != nil {
		return err
	}
	fuseDir := abs
	if f.bundle {
		if fuseDir, err = prepareBundle(abs); err != nil {
			return err
		}
	}
	srv, err := li.fsys.Mount(fuseDir, mountfs.MountOptions{Name: arg, Debug: f.debug})
	if err != nil {
		return err
	}
	if f.bundle {
		if err := finishBundle(li.img, abs); err != nil {
			unmountFUSE(srv, fuseDir)
			return err
		}
	}
	statePath, logPath := statePaths(abs)
	defer removeIfEmpty(logPath)
	st := mountState{PID: os.Getpid(), Dir: abs, Image: arg, Manifest: li.manifest, Bundle: f.bundle,
		Lazy: li.lazy != nil, Started: time.Now().UTC()}
	if err := writeState(statePath, &st); err != nil { // before ready: umount reads it
		warnf(os.Stderr, "%v", err)
	}
	sctx, stopStatus := context.WithCancel(context.WithoutCancel(ctx))
	statusDone := make(chan struct{})
	go func() { keepStatus(sctx, statePath, st, li); close(statusDone) }()
	defer func() { stopStatus(); <-statusDone; os.Remove(statePath) }()
	prefetch(ctx, f, li)
	if f.readyFd > 0 {
		ready := os.NewFile(uintptr(f.readyFd), "ready")
		fmt.Fprint(ready, "ready\n")
		ready.Close()
	} else {
		fmt.Fprintf(os.Stderr, "mounted %s at %s; serving until unmounted (oci2 umount %s) or interrupted\n", arg, abs, dir)
	}
	if li.rec != nil {
		defer func() {
			if err := li.rec.save(f.record); err != nil {
				warnf(os.Stderr, "%v", err)
			}
		}()
	}
	bgctx, stopBg := context.WithCancel(ctx)
	defer stopBg()
	a.startBackground(bgctx, f, li, arg)
	served := make(chan struct{})
	go func() { srv.Wait(); close(served) }()
	select {
	case <-served: // unmounted from outside
	case <-ctx.Done():
		if f.bundle {
			detach(filepath.Join(abs, "rootfs"))
		}
		unmountFUSE(srv, fuseDir)
	}
	return nil
}

// loadedImage is an image ready to mount.
type loadedImage struct {
	fsys     *mountfs.FS
	img      *reader.Image
	cr       *reader.ChunkReader
	manifest string
	lazy     *transfer.LazyImage // from a registry; nil: from the store
	rec      *recorder           // --record
	bg       background
}

// loadMount opens the image under a store lease (released once the
// metadata is loaded) and walks its tree into a mountable filesystem. A
// name the store lacks, or any with --registry, comes from its registry.
func (a *app) loadMount(ctx context.Context, f mountFlags, arg string) (*loadedImage, error) {
	plat, err := parsePlatform(f.platform)
	if err != nil {
		return nil, err
	}
	st, release, err := a.leasedStore(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	img, lazy, err := openOrLazy(ctx, st, arg, plat, f.fromReg, f.remote)
	if err != nil {
		return nil, err
	}
	var src reader.FrameSource = st.frames()
	if lazy != nil {
		src = lazy
	}
	cr := reader.NewChunkReader(img, src)
	opts := mountfs.Options{
		ReadError: func(ino uint64, err error) { warnf(os.Stderr, "read of inode %d: %v", ino, err) },
	}
	if lazy != nil {
		opts.ReadTimeout = f.readTimeout
		opts.Fetch = func(ctx context.Context, ids []format.ChunkID) error { return lazy.FetchChunks(ctx, cr, ids) }
	}
	li := &loadedImage{img: img, cr: cr, manifest: img.Descriptor.Digest.String(), lazy: lazy}
	if f.record != "" {
		li.rec = &recorder{}
		opts.FirstRead = li.rec.add
	}
	if li.fsys, err = mountfs.Load(ctx, img, cr, cr, opts); err != nil {
		return nil, err
	}
	return li, nil
}

// openOrLazy opens arg's image manifest of the store or, for a name the
// store lacks (any with fromReg), of its registry: the image's metadata is
// then fetched into the store and its data left to the returned LazyImage.
func openOrLazy(ctx context.Context, st *storeHandle, arg string, plat *ocispec.Platform, fromReg bool,
	remote remoteFlags) (*reader.Image, *transfer.LazyImage, error) {
	if !fromReg {
		md, err := resolveManifest(ctx, st, arg, plat)
		if !errors.Is(err, store.ErrNotFound) || strings.HasPrefix(arg, "sha256:") {
			if err != nil {
				return nil, nil, err
			}
			img, err := reader.Open(ctx, st, md)
			return img, nil, err
		}
	}
	opts, err := lazyOptions(remote)
	if err != nil {
		return nil, nil, err
	}
	if img := storedImage(ctx, st, arg, plat); img != nil {
		lazy, err := transfer.OpenStoredLazy(ctx, st, arg, img.Descriptor, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", arg, err)
		}
		return img, lazy, nil
	}
	lazy, err := transfer.OpenLazy(ctx, st, arg, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("%s is not in the store, and from its registry: %w", arg, err)
	}
	md, err := reader.Resolve(ctx, st, nil, lazy.Root.Digest.String(), plat)
	if err != nil {
		return nil, nil, err
	}
	img, err := reader.Open(ctx, st, md)
	return img, lazy, err
}

// storedImage opens REF@DIGEST arg from the store when the store holds its
// metadata (as an import from the registry leaves it; the snapshotter's
// mounts name images so): its manifests are then not fetched again. nil:
// arg names no digest (a tag's target may have moved) or the store lacks
// some of the metadata, which OpenLazy then fetches.
func storedImage(ctx context.Context, st *storeHandle, arg string, plat *ocispec.Platform) *reader.Image {
	named, err := reference.ParseNormalizedNamed(arg)
	if err != nil {
		return nil
	}
	d, ok := named.(reference.Digested)
	if !ok {
		return nil
	}
	md, err := reader.Resolve(ctx, st, nil, d.Digest().String(), plat)
	if err != nil {
		return nil
	}
	img, err := reader.Open(ctx, st, md)
	if err != nil {
		return nil
	}
	return img
}

// lazyOptions are the registry options of a lazy image.
func lazyOptions(remote remoteFlags) (transfer.PullOptions, error) {
	warn := warner()
	ro, err := remote.options(warn)
	if err != nil {
		return transfer.PullOptions{}, err
	}
	return transfer.PullOptions{Options: transfer.Options{Registry: ro, Warn: warn}}, nil
}

// statusEvery is how often a serving process updates its state file.
const statusEvery = 250 * time.Millisecond

// keepStatus rewrites the state file with the counters until ctx ends.
func keepStatus(ctx context.Context, path string, st mountState, li *loadedImage) {
	write := func() {
		st.Served = li.fsys.Stats()
		li.bg.status(&st)
		if li.lazy != nil {
			r := li.lazy.Stats()
			st.Fetched = &r
		}
		if err := writeState(path, &st); err != nil {
			warnf(os.Stderr, "%v", err)
		}
	}
	write()
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			write()
		}
	}
}

// prepareBundle creates the bundle's directories in dir (missing or empty)
// and returns where the FUSE mount goes.
func prepareBundle(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	if len(ents) > 0 {
		return "", fmt.Errorf("bundle directory %q: %w", dir, unpack.ErrNotEmpty)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", err
	}
	for _, d := range []string{"lower", "upper", "work", "rootfs"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "lower"), nil
}

// finishBundle mounts the overlay rootfs over the FUSE mount and writes
// config.json, resolving the image's user through the mounted /etc.
func finishBundle(img *reader.Image, dir string) error {
	p := func(s string) string { return filepath.Join(dir, s) }
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", p("lower"), p("upper"), p("work"))
	if err := unix.Mount("overlay", p("rootfs"), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting the overlay rootfs: %w", err)
	}
	spec, err := unpack.Spec(img, p("rootfs"), func(_ string, err error) { warnf(os.Stderr, "%v", err) })
	if err == nil {
		var b []byte
		if b, err = json.MarshalIndent(spec, "", "\t"); err == nil {
			err = os.WriteFile(p("config.json"), b, 0o600)
		}
	}
	if err != nil {
		detach(p("rootfs"))
		return fmt.Errorf("writing the bundle's config.json: %w", err)
	}
	return nil
}

// writeState replaces the state file atomically (readers never see half).
func writeState(path string, st *mountState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// unmountFUSE unmounts the FUSE mount, detaching it when it stays busy.
func unmountFUSE(srv *fuse.Server, dir string) {
	done := make(chan error, 1)
	go func() { done <- srv.Unmount() }()
	select {
	case err := <-done:
		if err == nil {
			return
		}
	case <-time.After(unmountWait):
	}
	detach(dir)
}

// detach unmounts dir lazily: it disappears now, and the kernel lets go of
// it when its last user does.
func detach(dir string) {
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		warnf(os.Stderr, "unmounting %s: %v", dir, err)
	}
}

// removeIfEmpty removes a serving process's log when nothing was logged.
func removeIfEmpty(path string) {
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		os.Remove(path)
	}
}
