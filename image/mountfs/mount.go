package mountfs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
)

// ErrUnsupported is an image a FUSE mount cannot show exactly.
var ErrUnsupported = errors.New("not representable in a FUSE mount")

// cacheTimeout is how long the kernel may keep names and attributes: the
// image is immutable, so as long as it likes (negative lookups included,
// which matter for interpreters probing import paths).
const cacheTimeout = 365 * 24 * time.Hour

// Options configure Load.
type Options struct {
	// Limits bound the walk of the image's tree (zero: reader.DefaultLimits).
	Limits reader.Limits
	// ReadError is told about every read that failed (the reader gets EIO);
	// calls may overlap.
	ReadError func(ino uint64, err error)
	// Fetch, when set, is given the data chunks a read is about to need
	// before it reads them (a lazy source fetches them together): a whole
	// file on its first read, or for a large file the chunks of a window
	// from the read's offset. A failure is reported and the read goes on
	// chunk by chunk.
	Fetch func(ctx context.Context, chunks []format.ChunkID) error
	// FirstRead, when set, is told about every data chunk the first time a
	// read needs it, in that order (a prefetch profile); calls may overlap.
	FirstRead func(id format.ChunkID)
	// ReadTimeout bounds one read (0: unbounded); a read that takes longer
	// fails with EIO, so a stalled source never hangs a reader.
	ReadTimeout time.Duration
}

// FS is a loaded image, ready to be mounted (any number of times).
type FS struct {
	t       *table
	cv      ChunkViewer
	opts    Options
	timeout time.Duration

	reads, readBytes, readErrors atomic.Int64
	seen                         sync.Map // format.ChunkID: chunks read (with FirstRead)
}

// Stats count what a mount served.
type Stats struct {
	Reads      int64 `json:"reads"`
	ReadBytes  int64 `json:"read_bytes"`
	ReadErrors int64 `json:"read_errors"`
	Inodes     int64 `json:"inodes"`
	Entries    int64 `json:"entries"`
	Bytes      int64 `json:"logical_bytes"`
}

// Load walks img's tree (validating it; cr reads the tree objects) and
// returns the filesystem, whose file data cv reads (usually cr itself).
// Nothing is read from file data until a file is read.
func Load(ctx context.Context, img *reader.Image, cr *reader.ChunkReader, cv ChunkViewer, opts Options) (*FS, error) {
	t, err := build(ctx, img, cr, opts.Limits)
	if err != nil {
		return nil, err
	}
	return &FS{t: t, cv: cv, opts: opts, timeout: cacheTimeout}, nil
}

// Stats returns the counters so far.
func (fsys *FS) Stats() Stats {
	return Stats{Reads: fsys.reads.Load(), ReadBytes: fsys.readBytes.Load(), ReadErrors: fsys.readErrors.Load(),
		Inodes: int64(len(fsys.t.inodes)), Entries: fsys.t.entries, Bytes: fsys.t.bytes}
}

func (fsys *FS) read(ctx context.Context, ino uint64, dest []byte, off uint64) (int, error) {
	if fsys.opts.ReadTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fsys.opts.ReadTimeout)
		defer cancel()
	}
	in := fsys.t.get(ino)
	if fsys.opts.Fetch != nil {
		if err := in.fetch(ctx, fsys.opts.Fetch, off); err != nil && fsys.opts.ReadError != nil {
			fsys.opts.ReadError(ino, fmt.Errorf("fetching ahead: %w", err))
		}
	}
	n, err := in.readAt(ctx, fsys.cv, dest, off, fsys.firstRead())
	fsys.reads.Add(1)
	fsys.readBytes.Add(int64(n))
	if err != nil {
		fsys.readErrors.Add(1)
		if fsys.opts.ReadError != nil {
			fsys.opts.ReadError(ino, err)
		}
	}
	return n, err
}

// firstRead passes on the first read of each chunk, or is nil.
func (fsys *FS) firstRead() func(format.ChunkID) {
	if fsys.opts.FirstRead == nil {
		return nil
	}
	return func(id format.ChunkID) {
		if _, loaded := fsys.seen.LoadOrStore(id, true); !loaded {
			fsys.opts.FirstRead(id)
		}
	}
}

// MountOptions configure Mount.
type MountOptions struct {
	// Name is the source shown in /proc/mounts (default "oci2").
	Name string
	// Debug logs every FUSE request to stderr.
	Debug bool
}

// Mount serves fsys at dir (an existing directory) until the returned
// server is unmounted; it returns once the kernel answers on the mount.
// The mount is read-only (writes fail with EROFS), the kernel enforces
// permissions (default_permissions) for every user (allow_other), and
// setuid bits and file capabilities keep their effect. Mounting without
// fusermount needs root.
func (fsys *FS) Mount(dir string, mo MountOptions) (*fuse.Server, error) {
	name := mo.Name
	if name == "" {
		name = "oci2"
	}
	root := &node{fsys: fsys, ino: rootIno}
	timeout := fsys.timeout
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:      name,
			Name:        "oci2",
			AllowOther:  true,
			Options:     []string{"default_permissions"},
			DirectMount: true,
			// MS_RDONLY gives EROFS to every write before it reaches us;
			// no MS_NOSUID (go-fuse's default), so setuid works on the mount.
			DirectMountFlags:     unix.MS_RDONLY | unix.MS_NODEV,
			MaxWrite:             1 << 20,
			MaxBackground:        64,
			EnableSymlinkCaching: true,
			EnableAcl:            true,
			Debug:                mo.Debug,
		},
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		NullPermissions: true, // mode 0 stays 0
		RootStableAttr:  &fs.StableAttr{Ino: rootIno},
	}
	srv, err := fs.Mount(dir, root, opts)
	if err != nil {
		return nil, fmt.Errorf("mounting at %q: %w", dir, err)
	}
	return srv, nil
}
