//go:build linux

package unpacktest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Entry is one path of a snapshot.
type Entry struct {
	Path      string // slash path from the root, "" for the root
	Type      string // dir, reg, symlink, char, block, fifo, socket
	Mode      uint32 // permission, setuid, setgid and sticky bits
	UID, GID  uint32
	MtimeSec  int64
	MtimeNsec int64
	Xattrs    map[string]string
	Size      int64  // reg
	Digest    string // reg: sha256 of the content
	Target    string // symlink
	Major     uint32 // char, block
	Minor     uint32
	Blocks    int64  // allocated 512-byte blocks (reg)
	Link      string // first path (in path order) of this inode's group when it has several
	ino       uint64
}

// Snapshot is a tree's entries by path.
type Snapshot map[string]*Entry

// Take snapshots the tree at dir without following symlinks; it works
// through directory file descriptors, so depth and path length are
// unbounded.
func Take(dir string) (Snapshot, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	s := Snapshot{}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	root, err := entryOf("", &st, fd, ".")
	if err != nil {
		return nil, err
	}
	s[""] = root
	if err := s.walk(fd, ""); err != nil {
		return nil, err
	}
	s.linkGroups()
	return s, nil
}

func (s Snapshot) walk(dirfd int, prefix string) error {
	names, err := readDir(dirfd)
	if err != nil {
		return fmt.Errorf("%q: %w", prefix, err)
	}
	for _, name := range names {
		p := name
		if prefix != "" {
			p = prefix + "/" + name
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%q: %w", p, err)
		}
		e, err := entryOf(p, &st, dirfd, name)
		if err != nil {
			return fmt.Errorf("%q: %w", p, err)
		}
		s[p] = e
		if e.Type == "dir" {
			cfd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("%q: %w", p, err)
			}
			err = s.walk(cfd, p)
			unix.Close(cfd)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func readDir(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

func entryOf(p string, st *unix.Stat_t, dirfd int, name string) (*Entry, error) {
	e := &Entry{Path: p, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid,
		MtimeSec: st.Mtim.Sec, MtimeNsec: st.Mtim.Nsec, ino: st.Ino}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.Type = "dir"
	case unix.S_IFREG:
		e.Type, e.Size, e.Blocks = "reg", st.Size, st.Blocks
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(fd), name)
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		e.Digest = hex.EncodeToString(h.Sum(nil))
	case unix.S_IFLNK:
		e.Type = "symlink"
		buf := make([]byte, 8192)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return nil, err
		}
		e.Target = string(buf[:n])
	case unix.S_IFCHR, unix.S_IFBLK:
		e.Type = "char"
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			e.Type = "block"
		}
		e.Major, e.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFIFO:
		e.Type = "fifo"
	case unix.S_IFSOCK:
		e.Type = "socket"
	}
	xs, err := xattrs(dirfd, name)
	if err != nil {
		return nil, fmt.Errorf("xattrs: %w", err)
	}
	e.Xattrs = xs
	return e, nil
}

// xattrs lists name's xattrs through /proc (no *at form of llistxattr).
func xattrs(dirfd int, name string) (map[string]string, error) {
	path := "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(path, buf)
	if err == unix.ENOTSUP {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out map[string]string
	for _, x := range strings.Split(string(buf[:n]), "\x00") {
		if x == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(path, x, v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", x, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[x] = string(v[:m])
	}
	return out, nil
}

// linkGroups sets Link on regular files sharing an inode.
func (s Snapshot) linkGroups() {
	groups := map[uint64][]string{}
	for p, e := range s {
		if e.Type == "reg" {
			groups[e.ino] = append(groups[e.ino], p)
		}
	}
	for _, ps := range groups {
		if len(ps) < 2 {
			continue
		}
		sort.Strings(ps)
		for _, p := range ps {
			s[p].Link = ps[0]
		}
	}
}
