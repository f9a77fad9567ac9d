//go:build linux

package regfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// ErrNotRegular is the category of every refusal for the file's type.
var ErrNotRegular = errors.New("not a regular file")

// readFlags open the file itself once its type is known. O_NONBLOCK and
// O_NOCTTY still guard the open should the type check ever be bypassed.
const readFlags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC

// Open opens path for reading if it is a regular file. With follow false a
// final symlink is refused as one; symlinks of the parents are followed
// either way (the caller chose the path).
func Open(path string, follow bool) (*os.File, unix.Stat_t, error) {
	flags := unix.O_PATH | unix.O_CLOEXEC
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(path, flags, 0)
	if err != nil {
		return nil, unix.Stat_t{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	h := os.NewFile(uintptr(fd), path)
	defer h.Close()
	return reopen(h)
}

// OpenInRoot opens path below root for reading if it is a regular file,
// resolving every symlink as if root were "/" (a symlink never leaves root).
func OpenInRoot(root *os.File, path string) (*os.File, unix.Stat_t, error) {
	h, err := pathrs.OpenatInRoot(root, path)
	if err != nil {
		return nil, unix.Stat_t{}, err
	}
	defer h.Close()
	return reopen(h)
}

// reopen checks the type of the O_PATH handle h (opening it had no effect
// on the file: no driver ran) and, for a regular file only, opens that same
// inode for reading through /proc/self/fd, so nothing can be swapped in
// between the check and the open.
//
// The plain /proc/self/fd path is several times cheaper per file than
// pathrs.Reopen's checks against a hostile /proc mount, which matter to a
// container runtime, not to a tool on the host; pathrs.Reopen is the
// fallback when /proc is not mounted (it mounts a private procfs). The
// reopened inode must be the one checked.
func reopen(h *os.File) (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, st, &os.PathError{Op: "fstat", Path: h.Name(), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, st, fmt.Errorf("%w (%s)", ErrNotRegular, Kind(&st))
	}
	var f *os.File
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(int(h.Fd())), readFlags, 0)
	if err == nil {
		f = os.NewFile(uintptr(fd), h.Name())
	} else if err == unix.ENOENT {
		f, err = pathrs.Reopen(h, readFlags)
	}
	if err != nil {
		return nil, st, fmt.Errorf("reopening %s: %w", h.Name(), err)
	}
	var got unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &got); err != nil || got.Dev != st.Dev || got.Ino != st.Ino {
		f.Close()
		return nil, st, fmt.Errorf("reopening %s: /proc/self/fd gave another file (%v)", h.Name(), err)
	}
	return f, got, nil
}

// Kind names the type of st, with the device numbers of a device node.
func Kind(st *unix.Stat_t) string {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return fmt.Sprintf("character device %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case unix.S_IFBLK:
		return fmt.Sprintf("block device %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return fmt.Sprintf("file type %#o", st.Mode&unix.S_IFMT)
}
