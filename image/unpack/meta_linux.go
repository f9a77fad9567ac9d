//go:build linux

package unpack

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
)

// Metadata is applied in an order that keeps every bit: owner first (chown
// clears setuid/setgid and file capabilities), then mode, then xattrs with
// security.capability last, then times. An unprivileged unpack sets xattrs
// before the mode: it skips security.capability anyway, and the owner may
// only set user.* xattrs while the mode still grants it write permission.

const capabilityXattr = "security.capability"

// applyFd sets the metadata of an open regular file or directory.
func (u *unpacker) applyFd(fd int, p string, e *format.Entry, chmod bool) error {
	if err := u.chown(p, e, func(uid, gid int) error { return unix.Fchown(fd, uid, gid) }); err != nil {
		return err
	}
	setx := func() error {
		return u.setXattrs(p, e, func(name string, v []byte) error { return unix.Fsetxattr(fd, name, v, 0) })
	}
	if u.unpriv {
		if err := setx(); err != nil {
			return err
		}
	}
	if chmod {
		if err := unix.Fchmod(fd, e.Mode); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if !u.unpriv {
		if err := setx(); err != nil {
			return err
		}
	}
	ts := times(e)
	if err := futimens(fd, &ts); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}

// applyAt sets the metadata of name in dirfd (a symlink, device or fifo)
// without following it.
func (u *unpacker) applyAt(dirfd int, name, p string, e *format.Entry) error {
	err := u.chown(p, e, func(uid, gid int) error {
		return unix.Fchownat(dirfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		return err
	}
	setx := func() error {
		return u.setXattrs(p, e, func(n string, v []byte) error { return unix.Lsetxattr(procPath(dirfd, name), n, v, 0) })
	}
	if u.unpriv {
		if err := setx(); err != nil {
			return err
		}
	}
	if e.Type != format.TypeSymlink {
		if err := fchmodatNoFollow(dirfd, name, e.Mode); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if !u.unpriv {
		if err := setx(); err != nil {
			return err
		}
	}
	ts := times(e)
	if err := unix.UtimesNanoAt(dirfd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}

// fchmodatNoFollow changes the mode of name in dirfd, refusing to follow a
// symlink where the kernel can (fchmodat2); older kernels fall back to
// fchmodat, on an entry this unpack just created and checked.
func fchmodatNoFollow(dirfd int, name string, mode uint32) error {
	err := unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return fmt.Errorf("%q became a symlink", name)
		}
		err = unix.Fchmodat(dirfd, name, mode, 0)
	}
	return err
}

// times is (atime, mtime), both the entry's mtime.
func times(e *format.Entry) [2]unix.Timespec {
	t := unix.Timespec{Sec: e.MtimeSec, Nsec: int64(e.MtimeNsec)}
	return [2]unix.Timespec{t, t}
}

// chown runs do with e's owner, mapped by Options.MapIDs; an unprivileged
// unpack skips owners it may not set.
func (u *unpacker) chown(p string, e *format.Entry, do func(uid, gid int) error) error {
	uid, gid := e.UID, e.GID
	if m := u.opts.MapIDs; m != nil {
		var err error
		if uid, gid, err = m(uid, gid); err != nil {
			return fmt.Errorf("owner %d:%d: %w", e.UID, e.GID, err)
		}
	}
	err := do(int(uid), int(gid))
	if err == nil {
		return nil
	}
	if u.unpriv && isPerm(err) {
		u.warn(fmt.Sprintf("chown:%d:%d", e.UID, e.GID), p,
			fmt.Errorf("owner %d:%d not set (unprivileged): %w", e.UID, e.GID, err))
		return nil
	}
	return fmt.Errorf("chown %d:%d: %w", e.UID, e.GID, err)
}

// setXattrs sets e's xattrs, security.capability last.
func (u *unpacker) setXattrs(p string, e *format.Entry, set func(name string, v []byte) error) error {
	var capv []byte
	hasCap := false
	for _, x := range e.Xattrs {
		if x.Name == capabilityXattr {
			capv, hasCap = x.Value, true
			continue
		}
		if err := u.setXattr(p, e, x.Name, x.Value, set); err != nil {
			return err
		}
	}
	if hasCap {
		return u.setXattr(p, e, capabilityXattr, capv, set)
	}
	return nil
}

func (u *unpacker) setXattr(p string, e *format.Entry, name string, v []byte, set func(string, []byte) error) error {
	if strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
		return fmt.Errorf("refusing overlayfs xattr %q", name)
	}
	privileged := strings.HasPrefix(name, "trusted.") || strings.HasPrefix(name, "security.")
	if u.unpriv && privileged {
		u.warn("xattr:"+name, p, fmt.Errorf("xattr %q skipped (unprivileged)", name))
		return nil
	}
	if err := set(name, v); err != nil {
		if u.unpriv && isPerm(err) {
			u.warn("xattr:"+name, p, fmt.Errorf("xattr %q not set: %w", name, err))
			return nil
		}
		if why := u.cannotHold(err, e, name, len(v)); why != "" {
			u.warn("xattr-fs:"+name, p, fmt.Errorf("xattr %q (%d bytes) skipped: %s: %w", name, len(v), why, err))
			return nil
		}
		return fmt.Errorf("setting xattr %q: %w", name, err)
	}
	return nil
}

// cannotHold says why the destination filesystem cannot hold an xattr
// SPEC.md §4.2 allows (its setxattr error err), or "" for any other error.
// Such an xattr is skipped with a warning, as unprivileged unpacks skip
// what they may not set: values of 64 KiB do not fit ext4 without the
// ea_inode feature (ENOSPC although the disk has room), some filesystems
// have no xattrs of a namespace (EOPNOTSUPP), and Linux keeps user.*
// xattrs on regular files and directories only (EPERM, even for root). A
// full filesystem still fails the unpack.
func (u *unpacker) cannotHold(err error, e *format.Entry, name string, size int) string {
	switch {
	case errors.Is(err, unix.E2BIG):
		return "too large for this filesystem"
	case errors.Is(err, unix.ENOSPC):
		var st unix.Statfs_t
		if unix.Fstatfs(u.rootfd, &st) == nil && st.Bavail*uint64(st.Bsize) > uint64(size)+1<<20 {
			return "too large for this filesystem, which has no room for it among the file's xattrs " +
				"(ext4 without ea_inode holds one block)"
		}
	case errors.Is(err, unix.EOPNOTSUPP):
		return "not supported by this filesystem"
	case errors.Is(err, unix.EPERM) && strings.HasPrefix(name, "user.") &&
		e.Type != format.TypeReg && e.Type != format.TypeDir:
		return "Linux keeps user.* xattrs on regular files and directories only"
	}
	return ""
}
