//go:build linux

package unpack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
)

// progressEvery throttles Progress calls.
const progressEvery = 100 * time.Millisecond

// openDest creates dest when missing and opens it; an existing dest must be
// an empty directory unless force.
func openDest(dest string, mode uint32, force bool) (int, error) {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return -1, err
	}
	created := true
	if err := unix.Mkdir(dest, mode); err == unix.EEXIST {
		created = false
	} else if err != nil {
		return -1, fmt.Errorf("creating %q: %w", dest, err)
	}
	fd, err := unix.Open(dest, dirFlags, 0)
	if err == unix.ELOOP || err == unix.ENOTDIR {
		if fi, lerr := os.Lstat(dest); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			return -1, fmt.Errorf("destination %q is a symlink", dest)
		}
		return -1, fmt.Errorf("destination %q is not a directory", dest)
	}
	if err != nil {
		return -1, fmt.Errorf("opening %q: %w", dest, err)
	}
	if !created && !force {
		empty, err := isEmptyDir(fd)
		if err == nil && !empty {
			err = fmt.Errorf("%q: %w (force to unpack into it)", dest, ErrNotEmpty)
		}
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

func unpackDir(ctx context.Context, img *reader.Image, cr *reader.ChunkReader, dest string, opts Options) (Stats, error) {
	total, err := scan(ctx, img, cr, opts.Limits)
	if err != nil {
		return Stats{}, err
	}
	fd, err := openDest(dest, 0o700, opts.Force)
	if err != nil {
		return Stats{}, fmt.Errorf("unpacking: %w", err)
	}
	defer unix.Close(fd)
	return unpackAt(ctx, img, cr, fd, total, opts)
}

// dirState is a directory being unpacked: created, open, metadata pending.
type dirState struct {
	fd   int
	path string
	root bool // the destination: owned by the caller
}

// fileJob is a created regular file whose content and metadata a worker
// writes; the worker closes fd.
type fileJob struct {
	fd   int
	path string
	e    format.Entry
}

// deferredChmod is a directory without owner search permission whose mode
// an unprivileged unpack sets last (later hardlinks may need to pass it).
type deferredChmod struct {
	comps []string
	mode  uint32
}

type unpacker struct {
	ctx    context.Context
	cr     *reader.ChunkReader
	opts   Options
	unpriv bool
	rootfd int

	stack    []dirState // the walker's open directories, root first
	jobs     chan fileJob
	deferred []deferredChmod

	entries, dirs, files, symlinks, hardlinks, devices, fifos, bytes, skipped atomic.Int64

	warnMu sync.Mutex
	warned map[string]bool
	progMu sync.Mutex
	last   time.Time
	total  Progress // the totals fields
}

// scan walks the image once before anything is written: every tree is
// validated (names, hardlinks, limits) and progress gets its totals.
func scan(ctx context.Context, img *reader.Image, cr *reader.ChunkReader, limits reader.Limits) (Progress, error) {
	var total Progress
	err := reader.Walk(ctx, cr, img.Root, limits, func(p string, e *format.Entry) error {
		total.EntriesTotal++
		if e.Type == format.TypeReg {
			total.BytesTotal += int64(e.Size)
		}
		return nil
	})
	return total, err
}

// unpackAt unpacks into the open directory rootfd (not closed); total comes
// from scan.
func unpackAt(ctx context.Context, img *reader.Image, cr *reader.ChunkReader, rootfd int, total Progress,
	opts Options) (Stats, error) {
	u := &unpacker{cr: cr, opts: opts, rootfd: rootfd, warned: map[string]bool{},
		unpriv: opts.Unprivileged || os.Geteuid() != 0, total: total}
	u.report(true)
	workers := opts.Workers
	if workers <= 0 {
		workers = max(2, runtime.GOMAXPROCS(0))
	}
	g, gctx := errgroup.WithContext(ctx)
	u.ctx = gctx
	u.jobs = make(chan fileJob, 2*workers)
	for range workers {
		g.Go(u.worker)
	}
	g.Go(func() error {
		defer close(u.jobs)
		err := reader.WalkPrePost(gctx, cr, img.Root, opts.Limits, u.pre, u.post)
		if err != nil {
			u.closeStack()
		}
		return err
	})
	err := g.Wait()
	for j := range u.jobs { // left over after an error
		unix.Close(j.fd)
	}
	if err == nil {
		err = u.finish()
	}
	u.report(true)
	return u.stats(), err
}

func (u *unpacker) stats() Stats {
	return Stats{Entries: u.entries.Load(), Dirs: u.dirs.Load(), Files: u.files.Load(),
		Symlinks: u.symlinks.Load(), Hardlinks: u.hardlinks.Load(), Devices: u.devices.Load(),
		Fifos: u.fifos.Load(), Bytes: u.bytes.Load(), Skipped: u.skipped.Load()}
}

func (u *unpacker) closeStack() {
	for _, d := range u.stack {
		if !d.root {
			unix.Close(d.fd)
		}
	}
	u.stack = nil
}

// report calls Progress at most every progressEvery, or now when force.
func (u *unpacker) report(force bool) {
	if u.opts.Progress == nil {
		return
	}
	u.progMu.Lock()
	defer u.progMu.Unlock()
	now := time.Now()
	if !force && now.Sub(u.last) < progressEvery {
		return
	}
	u.last = now
	p := u.total
	p.Entries, p.Bytes = u.entries.Load(), u.bytes.Load()
	u.opts.Progress(p)
}

// warn reports a skipped privileged operation once per key.
func (u *unpacker) warn(key, p string, err error) {
	u.skipped.Add(1)
	u.warnMu.Lock()
	defer u.warnMu.Unlock()
	if !u.warned[key] && u.opts.Warn != nil {
		u.opts.Warn("/"+p, err) // under the lock: calls do not overlap
	}
	u.warned[key] = true
}

func (u *unpacker) pre(p string, e *format.Entry) error {
	if p == "" {
		u.stack = append(u.stack, dirState{fd: u.rootfd, root: true})
		u.entries.Add(1)
		u.dirs.Add(1)
		return nil
	}
	if err := u.create(u.stack[len(u.stack)-1].fd, p, e); err != nil {
		return fmt.Errorf("unpacking %q: %w", "/"+p, err)
	}
	u.entries.Add(1)
	u.report(false)
	return nil
}

func (u *unpacker) post(p string, e *format.Entry) error {
	d := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	chmodNow := d.root || !u.unpriv || e.Mode&0o100 != 0
	err := u.applyFd(d.fd, p, e, chmodNow)
	if !chmodNow {
		u.deferred = append(u.deferred, deferredChmod{comps: strings.Split(p, "/"), mode: e.Mode})
	}
	if !d.root {
		if cerr := unix.Close(d.fd); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("unpacking %q: %w", "/"+p, err)
	}
	return nil
}

// finish sets the modes an unprivileged unpack deferred, innermost first.
func (u *unpacker) finish() error {
	for _, d := range u.deferred {
		pfd, err := openPath(u.rootfd, d.comps[:len(d.comps)-1])
		if err == nil {
			err = fchmodatNoFollow(pfd, d.comps[len(d.comps)-1], d.mode)
			unix.Close(pfd)
		}
		if err != nil {
			return fmt.Errorf("unpacking %q: chmod: %w", "/"+strings.Join(d.comps, "/"), err)
		}
	}
	return nil
}

// create makes the entry e named p in the directory dirfd.
func (u *unpacker) create(dirfd int, p string, e *format.Entry) error {
	name := e.Name
	if err := checkName(name); err != nil {
		return err
	}
	switch e.Type {
	case format.TypeDir:
		fd, err := u.mkdir(dirfd, name)
		if err != nil {
			return err
		}
		u.stack = append(u.stack, dirState{fd: fd, path: p})
		u.dirs.Add(1)
		return nil
	case format.TypeReg:
		return u.createFile(dirfd, p, e)
	case format.TypeSymlink:
		if err := u.replace(dirfd, name, func() error { return unix.Symlinkat(e.Target, dirfd, name) }); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		u.symlinks.Add(1)
		return u.applyAt(dirfd, name, p, e)
	case format.TypeHardlink:
		if err := u.link(dirfd, name, e.Target); err != nil {
			return err
		}
		u.hardlinks.Add(1)
		return nil
	case format.TypeChar, format.TypeBlock:
		if u.unpriv {
			u.warn("dev:"+p, p, fmt.Errorf("device node %d:%d skipped (unprivileged)", e.DevMajor, e.DevMinor))
			return nil
		}
		mode := uint32(unix.S_IFCHR)
		if e.Type == format.TypeBlock {
			mode = unix.S_IFBLK
		}
		dev := int(unix.Mkdev(e.DevMajor, e.DevMinor))
		if err := u.replace(dirfd, name, func() error { return unix.Mknodat(dirfd, name, mode|0o600, dev) }); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
		u.devices.Add(1)
		return u.applyAt(dirfd, name, p, e)
	case format.TypeFifo:
		if err := u.replace(dirfd, name, func() error { return unix.Mknodat(dirfd, name, unix.S_IFIFO|0o600, 0) }); err != nil {
			return fmt.Errorf("mkfifo: %w", err)
		}
		u.fifos.Add(1)
		return u.applyAt(dirfd, name, p, e)
	}
	return fmt.Errorf("unknown entry type %d", e.Type)
}

// replace runs create; with Force, an existing entry in the way is removed
// (recursively, never following symlinks) and create runs again.
func (u *unpacker) replace(dirfd int, name string, create func() error) error {
	err := create()
	if err == unix.EEXIST && u.opts.Force {
		if err = removeAllAt(dirfd, name); err == nil {
			err = create()
		}
	}
	return err
}

// mkdir creates (or, with Force, reuses) directory name and opens it.
func (u *unpacker) mkdir(dirfd int, name string) (int, error) {
	err := unix.Mkdirat(dirfd, name, 0o700)
	if err == unix.EEXIST && u.opts.Force {
		if st, serr := lstatAt(dirfd, name); serr == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = nil // merge into it
		} else if err = removeAllAt(dirfd, name); err == nil {
			err = unix.Mkdirat(dirfd, name, 0o700)
		}
	}
	if err != nil {
		return -1, fmt.Errorf("mkdir: %w", err)
	}
	return openDirAt(dirfd, name, dirFlags)
}

// createFile creates a regular file and hands it to a worker (or finishes
// an empty one here).
func (u *unpacker) createFile(dirfd int, p string, e *format.Entry) error {
	if sum := format.ExtentsSize(e.Extents); sum != e.Size {
		return fmt.Errorf("extents add up to %d bytes, size is %d", sum, e.Size)
	}
	var fd int
	err := u.replace(dirfd, e.Name, func() error {
		var err error
		fd, err = unix.Openat(dirfd, e.Name, fileFlags, 0o600)
		return err
	})
	if err != nil {
		return fmt.Errorf("creating file: %w", err)
	}
	u.files.Add(1)
	if e.Size == 0 {
		err := u.applyFd(fd, p, e, true)
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
		return err
	}
	select {
	case u.jobs <- fileJob{fd: fd, path: p, e: *e}:
		return nil
	case <-u.ctx.Done():
		unix.Close(fd)
		return u.ctx.Err()
	}
}

// link makes name in dirfd a hardlink to target, a path from the root
// resolved without following symlinks.
func (u *unpacker) link(dirfd int, name, target string) error {
	comps := strings.Split(target, "/")
	for _, c := range comps {
		if err := checkName(c); err != nil {
			return fmt.Errorf("hardlink target %q: %w", target, err)
		}
	}
	tfd, err := openPath(u.rootfd, comps[:len(comps)-1])
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", target, err)
	}
	defer unix.Close(tfd)
	last := comps[len(comps)-1]
	st, err := lstatAt(tfd, last)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", target, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("hardlink target %q is not a regular file", target)
	}
	err = u.replace(dirfd, name, func() error { return unix.Linkat(tfd, last, dirfd, name, 0) })
	if err != nil {
		return fmt.Errorf("hardlink to %q: %w", target, err)
	}
	return nil
}

func (u *unpacker) worker() error {
	for j := range u.jobs {
		if u.ctx.Err() != nil {
			unix.Close(j.fd) // drain after an error
			continue
		}
		err := u.writeFile(&j)
		if cerr := unix.Close(j.fd); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("unpacking %q: %w", "/"+j.path, err)
		}
		u.report(false)
	}
	return nil
}

// writeFile writes a file's data extents (zero extents stay holes) and then
// its metadata.
func (u *unpacker) writeFile(j *fileJob) error {
	e := &j.e
	if err := unix.Ftruncate(j.fd, int64(e.Size)); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	var off uint64
	for _, x := range e.Extents {
		if !x.Zero {
			err := u.cr.ViewChunk(u.ctx, x.Chunk, func(b []byte) error {
				if uint64(len(b)) != x.Length {
					return fmt.Errorf("chunk %s has %d bytes, its extent %d", x.Chunk, len(b), x.Length)
				}
				return pwriteAll(j.fd, b, int64(off))
			})
			if err != nil {
				return fmt.Errorf("at offset %d: %w", off, err)
			}
		}
		off += x.Length
		u.bytes.Add(int64(x.Length))
	}
	return u.applyFd(j.fd, j.path, e, true)
}
