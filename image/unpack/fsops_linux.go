//go:build linux

package unpack

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
)

// Every filesystem operation below works relative to a directory file
// descriptor and one path component, and never follows a symlink: the
// directories on the way are opened with O_NOFOLLOW, so a symlink the image
// created (or one already in the destination) is never traversed.

const (
	dirFlags  = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	pathFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fileFlags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
)

// checkName refuses anything that is not a single path component. Tree
// decoding already guarantees it; this keeps the guarantee local.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > format.MaxNameLen ||
		strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid name %q", name)
	}
	return nil
}

// openDirAt opens directory name in dirfd without following a symlink.
func openDirAt(dirfd int, name string, flags int) (int, error) {
	if err := checkName(name); err != nil {
		return -1, err
	}
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ELOOP || err == unix.ENOTDIR {
			return -1, fmt.Errorf("%q is not a directory (symlinks are not followed): %w", name, err)
		}
		return fd, err
	}
}

// openPath opens the directory at the slash path comps from rootfd, one
// component at a time, refusing symlinks; the result is an O_PATH fd.
func openPath(rootfd int, comps []string) (int, error) {
	fd, err := unix.Openat(rootfd, ".", pathFlags, 0)
	if err != nil {
		return -1, err
	}
	for i, c := range comps {
		next, err := openDirAt(fd, c, pathFlags)
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("opening %q: %w", strings.Join(comps[:i+1], "/"), err)
		}
		fd = next
	}
	return fd, nil
}

// removeAllAt removes name from dirfd, recursively for a directory, never
// following symlinks.
func removeAllAt(dirfd int, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, err := openDirAt(dirfd, name, dirFlags)
	if err != nil {
		return err
	}
	names, err := readDirNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// readDirNames lists a directory (without "." and "..").
func readDirNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// isEmptyDir reports whether the directory fd has no entries.
func isEmptyDir(fd int) (bool, error) {
	dup, err := unix.Openat(fd, ".", dirFlags, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(dup)
	names, err := readDirNames(dup)
	return len(names) == 0, err
}

// lstatAt stats name in dirfd without following it.
func lstatAt(dirfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// futimens sets an open file's times with nanosecond precision
// (utimensat(fd, NULL, ts, 0), which x/sys does not expose).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// procPath names name in dirfd through /proc, for the few calls that have
// no *at form (lsetxattr): the kernel resolves the directory through the
// fd and the final component without following it.
func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// isPerm reports errors an unprivileged process gets for privileged
// operations.
func isPerm(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL)
}

// pwriteAll writes b at off.
func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}
