package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// node is everything the tests compare about one filesystem entry.
type node struct {
	Mode       uint32 // full st_mode: type and permission bits
	UID, GID   uint32
	Size       int64 // regular files and symlinks
	Rdev       uint64
	MtimeNs    int64
	Nlink      uint64 // non-directories
	Target     string // symlink
	Xattrs     map[string]string
	Content    string   // regular files: zero-run-insensitive content hash
	Data       []extent // regular files: data extents (SEEK_DATA/SEEK_HOLE)
	LinkGroup  string   // other paths of the same inode, sorted
	inodeKey   [2]uint64
	isRegular  bool
	isDir      bool
	isLinkable bool
}

type extent struct{ Off, Len int64 }

func (e extent) String() string { return fmt.Sprintf("[%d,+%d)", e.Off, e.Len) }

// snapshot records every entry under root (root itself as "."), keyed by
// path relative to root. Paths may hold any byte but NUL.
func snapshot(t testing.TB, root string) map[string]*node {
	t.Helper()
	out := map[string]*node{}
	inodes := map[[2]uint64][]string{}
	var walk func(rel string)
	walk = func(rel string) {
		p := filepath.Join(root, rel)
		n, err := stat(p)
		if err != nil {
			t.Fatalf("snapshot %q: %v", p, err)
		}
		out[rel] = n
		if !n.isDir {
			inodes[n.inodeKey] = append(inodes[n.inodeKey], rel)
			return
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			t.Fatalf("snapshot: reading %q: %v", p, err)
		}
		for _, name := range names {
			walk(filepath.Join(rel, name))
		}
	}
	walk(".")
	for _, paths := range inodes {
		if len(paths) < 2 {
			continue
		}
		sort.Strings(paths)
		for _, p := range paths {
			out[p].LinkGroup = strings.Join(paths, "|")
		}
	}
	return out
}

// stat reads one entry's metadata, xattrs and content without following
// symlinks.
func stat(p string) (*node, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return nil, err
	}
	n := &node{
		Mode: st.Mode, UID: st.Uid, GID: st.Gid,
		MtimeNs:  st.Mtim.Nano(),
		inodeKey: [2]uint64{st.Dev, st.Ino},
	}
	var err error
	if n.Xattrs, err = xattrs(p); err != nil {
		return nil, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		n.isDir = true
	case unix.S_IFREG:
		n.isRegular = true
		n.Size, n.Nlink = st.Size, st.Nlink
		if n.Content, n.Data, err = content(p, st.Size); err != nil {
			return nil, err
		}
	case unix.S_IFLNK:
		n.Size, n.Nlink = st.Size, st.Nlink
		if n.Target, err = os.Readlink(p); err != nil {
			return nil, err
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		n.Rdev, n.Nlink = st.Rdev, st.Nlink
	default:
		n.Nlink = st.Nlink
	}
	return n, nil
}

// xattrs lists every extended attribute of p (not following symlinks).
func xattrs(p string) (map[string]string, error) {
	buf := make([]byte, 64<<10)
	sz, err := unix.Llistxattr(p, buf)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, fmt.Errorf("listxattr %q: %w", p, err)
	}
	m := map[string]string{}
	for _, name := range strings.Split(string(buf[:sz]), "\x00") {
		if name == "" {
			continue
		}
		val := make([]byte, 64<<10)
		vs, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			return nil, fmt.Errorf("getxattr %q %s: %w", p, name, err)
		}
		m[name] = string(val[:vs])
	}
	return m, nil
}

// content hashes a regular file so that the hash does not depend on which
// zero blocks are holes: aligned 4 KiB zero blocks, a zero final partial
// block and holes are hashed as run lengths, other bytes as they are. It also returns the file's data
// extents as the filesystem reports them.
func content(p string, size int64) (string, []extent, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	data, err := dataExtents(f, size)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", p, err)
	}
	h := sha256.New()
	var zeros int64
	flush := func() {
		if zeros > 0 {
			fmt.Fprintf(h, "Z%d;", zeros)
			zeros = 0
		}
	}
	block := make([]byte, 4096)
	zero := make([]byte, 4096)
	pos := int64(0)
	for _, e := range data {
		zeros += e.Off - pos // a hole
		for off := e.Off; off < e.Off+e.Len; off += 4096 {
			n := min(int64(4096), e.Off+e.Len-off)
			if _, err := f.ReadAt(block[:n], off); err != nil && err != io.EOF {
				return "", nil, err
			}
			if bytes.Equal(block[:n], zero[:n]) { // zeros read like a hole
				zeros += n
				continue
			}
			flush()
			h.Write(block[:n])
		}
		pos = e.Off + e.Len
	}
	zeros += size - pos
	flush()
	return hex.EncodeToString(h.Sum(nil)), data, nil
}

// dataExtents maps a file's data regions with SEEK_DATA/SEEK_HOLE.
func dataExtents(f *os.File, size int64) ([]extent, error) {
	var out []extent
	fd := int(f.Fd())
	off := int64(0)
	for off < size {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("SEEK_DATA: %w", err)
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("SEEK_HOLE: %w", err)
		}
		h = min(h, size)
		out = append(out, extent{d, h - d})
		off = h
	}
	return out, nil
}

// compareOptions relax what compareTrees checks.
type compareOptions struct {
	Holes     bool                         // data extents must match too
	SkipRoot  bool                         // ignore "." (DEST's own metadata)
	IgnoreXat func(path, name string) bool // xattrs not to compare
}

// compareTrees reports every difference between two snapshots.
func compareTrees(t testing.TB, want, got map[string]*node, opts compareOptions) {
	t.Helper()
	var diffs []string
	for _, p := range sortedKeys(want) {
		g, ok := got[p]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%q: missing", p))
			continue
		}
		if p == "." && opts.SkipRoot {
			continue
		}
		diffs = append(diffs, compareNode(p, want[p], g, opts)...)
	}
	for _, p := range sortedKeys(got) {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%q: unexpected entry", p))
		}
	}
	if len(diffs) > 0 {
		if len(diffs) > 60 {
			diffs = append(diffs[:60], fmt.Sprintf("... and %d more", len(diffs)-60))
		}
		t.Errorf("trees differ (%d entries compared):\n%s", len(want), strings.Join(diffs, "\n"))
	}
}

func compareNode(p string, w, g *node, opts compareOptions) []string {
	var d []string
	add := func(field string, wv, gv any) {
		d = append(d, fmt.Sprintf("%q: %s: want %v, got %v", p, field, wv, gv))
	}
	if w.Mode != g.Mode {
		add("mode", fmt.Sprintf("%#o", w.Mode), fmt.Sprintf("%#o", g.Mode))
	}
	if w.UID != g.UID || w.GID != g.GID {
		add("owner", fmt.Sprintf("%d:%d", w.UID, w.GID), fmt.Sprintf("%d:%d", g.UID, g.GID))
	}
	if w.MtimeNs != g.MtimeNs {
		add("mtime (ns)", w.MtimeNs, g.MtimeNs)
	}
	if w.Size != g.Size {
		add("size", w.Size, g.Size)
	}
	if w.Rdev != g.Rdev {
		add("rdev", fmt.Sprintf("%d:%d", unix.Major(w.Rdev), unix.Minor(w.Rdev)),
			fmt.Sprintf("%d:%d", unix.Major(g.Rdev), unix.Minor(g.Rdev)))
	}
	if w.Nlink != g.Nlink {
		add("nlink", w.Nlink, g.Nlink)
	}
	if w.LinkGroup != g.LinkGroup {
		add("hardlink group", w.LinkGroup, g.LinkGroup)
	}
	if w.Target != g.Target {
		add("symlink target", fmt.Sprintf("%q", w.Target), fmt.Sprintf("%q", g.Target))
	}
	if w.Content != g.Content {
		add("content", w.Content[:12], g.Content[:12])
	}
	if opts.Holes && fmt.Sprint(w.Data) != fmt.Sprint(g.Data) {
		add("data extents (holes)", w.Data, g.Data)
	}
	wx, gx := filterXattrs(p, w.Xattrs, opts), filterXattrs(p, g.Xattrs, opts)
	for k, wv := range wx {
		if gv, ok := gx[k]; !ok {
			add("xattr "+k, "present", "missing")
		} else if gv != wv {
			add("xattr "+k, shortQ(wv), shortQ(gv))
		}
	}
	for k, gv := range gx {
		if _, ok := wx[k]; !ok {
			add("xattr "+k, "absent", shortQ(gv))
		}
	}
	return d
}

func filterXattrs(p string, m map[string]string, opts compareOptions) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if opts.IgnoreXat == nil || !opts.IgnoreXat(p, k) {
			out[k] = v
		}
	}
	return out
}

func sortedKeys(m map[string]*node) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// shortQ quotes a value, shortened for messages.
func shortQ(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q...(%d bytes)", s[:40], len(s))
	}
	return fmt.Sprintf("%q", s)
}
