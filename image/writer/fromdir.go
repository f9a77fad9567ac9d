package writer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
)

// FromDir walks dir (without following symlinks, staying on its
// filesystem) and returns its node tree: metadata, xattrs, hardlink groups,
// and Contents that open files with O_NOFOLLOW|O_NONBLOCK.
//
// Sockets, mount points and overlayfs-private xattrs are skipped and
// reported through opts.Warn; a failure to read an xattr is an error unless
// the filesystem does not support xattrs or it is a permission problem.
func FromDir(ctx context.Context, dir string, opts DirOptions) (*Node, error) {
	w, err := NewWalker(dir, opts)
	if err != nil {
		return nil, err
	}
	return w.Tree(ctx, "")
}

type walker struct {
	root string
	dev  uint64
	warn func(string, error) // safe for concurrent use
}

// walkDir reads the entries of the directory at path (rel from the root),
// then walks its subdirectories: in a goroutine of g while g has room,
// else in this one (so no walker ever waits for another).
func (w *walker) walkDir(ctx context.Context, g *errgroup.Group, n *Node, path, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("walking: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return fmt.Errorf("walking: %w", err)
	}
	sort.Strings(names)
	now := time.Now().UnixNano() // before any stat below
	var subdirs []*Node
	for _, name := range names {
		cpath, crel := joinPath(path, name), name
		if rel != "" {
			crel = rel + "/" + name
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				w.warn(cpath, errors.New("vanished during the walk"))
				continue
			}
			f.Close()
			return fmt.Errorf("walking: %w", &os.PathError{Op: "lstat", Path: cpath, Err: err})
		}
		c, err := w.entry(name, cpath, crel, &st, now, fd, name)
		if err != nil {
			f.Close()
			return err
		}
		if c == nil {
			continue
		}
		n.Children = append(n.Children, c)
		if c.Type == format.TypeDir {
			subdirs = append(subdirs, c)
		}
	}
	f.Close()
	for _, c := range subdirs {
		crel := c.Name
		if rel != "" {
			crel = rel + "/" + c.Name
		}
		cpath := joinPath(path, c.Name)
		if g.TryGo(func() error { return w.walkDir(ctx, g, c, cpath, crel) }) {
			continue
		}
		if err := w.walkDir(ctx, g, c, cpath, crel); err != nil {
			return err
		}
	}
	return nil
}

// entry makes the node called name (at path, rel from the root) from its
// lstat st; a symlink's target is read at linkname relative to dirfd. It
// returns nil for an entry that is not represented (a mount point, a
// socket).
func (w *walker) entry(name, path, rel string, st *unix.Stat_t, now int64, dirfd int, linkname string) (*Node, error) {
	if st.Dev != w.dev {
		w.warn(path, errors.New("mount point skipped (another filesystem)"))
		return nil, nil
	}
	n := &Node{}
	n.Name = name
	if err := w.fill(n, path, rel, st, now); err != nil {
		if errors.Is(err, errSkip) {
			return nil, nil
		}
		return nil, err
	}
	if n.Type == format.TypeSymlink {
		target, err := readlinkat(dirfd, linkname)
		if err != nil {
			return nil, fmt.Errorf("walking: %w", &os.PathError{Op: "readlink", Path: path, Err: err})
		}
		n.Target = target
	}
	return n, nil
}

// errSkip marks an entry that is not represented (sockets).
var errSkip = errors.New("skipped")

// fill sets n's type and metadata from st and reads its xattrs.
func (w *walker) fill(n *Node, path, rel string, st *unix.Stat_t, now int64) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		n.Type = format.TypeDir
	case unix.S_IFREG:
		n.Type = format.TypeReg
		n.Size = uint64(st.Size)
		n.Content = &SourceFile{Dir: w.root, Rel: rel, Path: path, Dev: st.Dev, Ino: st.Ino,
			Size: st.Size, MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano(), StatNs: now}
	case unix.S_IFLNK:
		n.Type = format.TypeSymlink
	case unix.S_IFCHR, unix.S_IFBLK:
		n.Type = format.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			n.Type = format.TypeBlock
		}
		n.DevMajor, n.DevMinor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFIFO:
		n.Type = format.TypeFifo
	case unix.S_IFSOCK:
		w.warn(path, errors.New("socket skipped"))
		return errSkip
	default:
		w.warn(path, fmt.Errorf("unknown file type %#o skipped", st.Mode&unix.S_IFMT))
		return errSkip
	}
	n.Mode = st.Mode & format.ModeMask
	n.UID, n.GID = st.Uid, st.Gid
	n.MtimeSec, n.MtimeNsec = st.Mtim.Sec, uint32(st.Mtim.Nsec)
	if n.Type != format.TypeDir && st.Nlink > 1 {
		// The walk stays on one filesystem, so the inode number names the
		// group, also across walks of that filesystem (Walker).
		n.Inode = st.Ino
	}
	xs, err := readXattrs(path, w.warn)
	if err != nil {
		return fmt.Errorf("walking: %w", err)
	}
	n.Xattrs = xs
	return nil
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// joinPath joins without cleaning (names are single components); the root
// "/" gets no doubled slash.
func joinPath(dir, name string) string {
	if strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}
