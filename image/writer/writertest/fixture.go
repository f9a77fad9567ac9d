package writertest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// Epoch is the mtime of every fixture entry that does not set one.
var Epoch = time.Date(2020, 1, 2, 3, 4, 5, 600, time.UTC)

// Entry is one fixture entry: File, Dir, Tree, Symlink, Fifo, Device,
// Hardlink or Socket.
type Entry interface {
	create(path string) error
}

// Meta is the metadata shared by entries. Zero values mean: mode 0644 for
// files, 0755 for directories; mtime Epoch; owner unchanged (UID/GID -1
// or 0 without Chown).
type Meta struct {
	Mode   os.FileMode // permission bits plus os.ModeSetuid/Setgid/Sticky
	Mtime  time.Time
	Chown  bool
	UID    int
	GID    int
	Xattrs map[string]string
}

// File is a regular file: Content, then, when Size is larger, a hole up to
// Size; At writes extra data at offsets (after truncating to Size).
type File struct {
	Meta
	Content string
	Size    int64
	At      map[int64]string
}

// Dir is a directory with default metadata.
type Dir map[string]Entry

// Tree is a directory with metadata.
type Tree struct {
	Meta
	Entries Dir
}

// Symlink is a symbolic link.
type Symlink struct {
	Target string
	Mtime  time.Time
}

// Fifo is a named pipe.
type Fifo struct{ Meta }

// Device is a character (or, with Block, block) device node.
type Device struct {
	Meta
	Block        bool
	Major, Minor uint32
}

// Hardlink is a hard link to Target, a slash path relative to the root
// whose entry is created first (entries are created in name order, depth
// first, so the target must sort earlier).
type Hardlink struct{ Target string }

// Socket is a unix socket (writers skip them).
type Socket struct{}

// Create materializes root's entries under dir (which must exist) and
// gives dir itself default directory metadata.
func Create(dir string, root Dir) error {
	return CreateTree(dir, Tree{Entries: root})
}

// CreateTree materializes t under dir (which must exist) and gives dir t's
// metadata.
func CreateTree(dir string, t Tree) error {
	c := creator{root: dir}
	return c.tree(dir, t)
}

type creator struct{ root string }

func (c creator) tree(path string, t Tree) error {
	names := make([]string, 0, len(t.Entries))
	for n := range t.Entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(path, n)
		var err error
		switch e := t.Entries[n].(type) {
		case Dir:
			if err = os.Mkdir(p, 0o700); err == nil {
				err = c.tree(p, Tree{Entries: e})
			}
		case Tree:
			if err = os.Mkdir(p, 0o700); err == nil {
				err = c.tree(p, e)
			}
		case Hardlink:
			err = os.Link(filepath.Join(c.root, filepath.FromSlash(e.Target)), p)
		default:
			err = e.create(p)
		}
		if err != nil {
			return fmt.Errorf("creating %s: %w", p, err)
		}
	}
	return t.Meta.apply(path, 0o755)
}

func (Dir) create(string) error      { panic("handled by tree") }
func (Tree) create(string) error     { panic("handled by tree") }
func (Hardlink) create(string) error { panic("handled by tree") }

func (f File) create(path string) error {
	if err := os.WriteFile(path, []byte(f.Content), 0o600); err != nil {
		return err
	}
	if f.Size > int64(len(f.Content)) {
		if err := os.Truncate(path, f.Size); err != nil {
			return err
		}
	}
	if len(f.At) > 0 {
		fh, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		for off, s := range f.At {
			if _, err := fh.WriteAt([]byte(s), off); err != nil {
				fh.Close()
				return err
			}
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	return f.Meta.apply(path, 0o644)
}

func (s Symlink) create(path string) error {
	if err := os.Symlink(s.Target, path); err != nil {
		return err
	}
	return setMtime(path, s.Mtime)
}

func (f Fifo) create(path string) error {
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return err
	}
	return f.Meta.apply(path, 0o644)
}

func (d Device) create(path string) error {
	mode := uint32(unix.S_IFCHR)
	if d.Block {
		mode = unix.S_IFBLK
	}
	if err := unix.Mknod(path, mode|0o600, int(unix.Mkdev(d.Major, d.Minor))); err != nil {
		return err
	}
	return d.Meta.apply(path, 0o644)
}

func (Socket) create(path string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrUnix{Name: path})
}

// apply sets ownership, xattrs, mode and mtime, in an order where none
// undoes another (chown clears setuid; mtime last).
func (m Meta) apply(path string, defMode os.FileMode) error {
	if m.Chown {
		if err := os.Lchown(path, m.UID, m.GID); err != nil {
			return err
		}
	}
	for k, v := range m.Xattrs {
		if err := unix.Lsetxattr(path, k, []byte(v), 0); err != nil {
			return fmt.Errorf("setting xattr %s: %w", k, err)
		}
	}
	mode := m.Mode
	if mode == 0 {
		mode = defMode
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return setMtime(path, m.Mtime)
}

func setMtime(path string, t time.Time) error {
	if t.IsZero() {
		t = Epoch
	}
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
}
