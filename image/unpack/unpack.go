package unpack

import (
	"context"
	"errors"

	"github.com/oci2/oci2/image/reader"
)

// ErrNotEmpty is a destination that already has entries (see Options.Force).
var ErrNotEmpty = errors.New("destination is not empty")

// Options configure Unpack and Bundle.
type Options struct {
	// Force allows a non-empty destination: entries of the image replace
	// what is there (directories are kept and merged, anything else is
	// removed first); other entries stay.
	Force bool
	// Unprivileged skips what needs privileges instead of failing: device
	// nodes, trusted.* and security.* xattrs, and chown to other owners
	// (each reported through Warn). It is implied when the effective uid is
	// not 0.
	Unprivileged bool
	// MapIDs, when set, maps the image's owners to the IDs written (a
	// user-namespace-remapped BuildKit's container-to-host mapping).
	MapIDs func(uid, gid uint32) (uint32, uint32, error)
	// Workers write regular files in parallel (default GOMAXPROCS, at least 2).
	Workers int
	// Limits bound the walk of the image's tree (zero: reader.DefaultLimits).
	Limits reader.Limits
	// Progress is called now and then, and once at the end; calls do not
	// overlap.
	Progress func(Progress)
	// Warn receives problems that do not stop the unpack (path "/" is the
	// root; "" is not about an entry), once per kind of problem (owner,
	// xattr name) or device; calls do not overlap.
	Warn func(path string, err error)
}

// Progress reports an unpack under way.
type Progress struct {
	Entries      int64 // entries created
	Bytes        int64 // logical bytes of regular files written (holes included)
	EntriesTotal int64 // entries of the image, the root included
	BytesTotal   int64 // logical bytes of the image's regular files
}

// Stats describe a finished unpack.
type Stats struct {
	Entries   int64 `json:"entries"` // the root included
	Dirs      int64 `json:"dirs"`
	Files     int64 `json:"files"`
	Symlinks  int64 `json:"symlinks"`
	Hardlinks int64 `json:"hardlinks"`
	Devices   int64 `json:"devices"` // character and block devices created
	Fifos     int64 `json:"fifos"`
	Bytes     int64 `json:"bytes"`   // logical bytes of regular files
	Skipped   int64 `json:"skipped"` // devices, xattrs and owners skipped when unprivileged, xattrs the filesystem cannot hold
}

// Unpack writes img's filesystem into dest, which is created when missing
// and must otherwise be an empty directory (unless opts.Force). dest itself
// gets the image's root metadata. dest must not be a symlink; nothing is
// ever written outside it, and no symlink is followed inside it. The whole
// tree is walked (and so validated) before anything is written.
func Unpack(ctx context.Context, img *reader.Image, cr *reader.ChunkReader, dest string, opts Options) (Stats, error) {
	return unpackDir(ctx, img, cr, dest, opts)
}

// Bundle writes an OCI runtime bundle into dir (created with mode 0700 when
// missing; else it must be empty unless opts.Force): the image's filesystem
// in dir/rootfs and dir/config.json, runc's default spec running the image
// config's process (see Spec).
func Bundle(ctx context.Context, img *reader.Image, cr *reader.ChunkReader, dir string, opts Options) (Stats, error) {
	return bundle(ctx, img, cr, dir, opts)
}
