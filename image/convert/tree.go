package convert

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/writer"
)

// Whiteout markers of the OCI layer format (image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// Limits of a tree entry (SPEC.md §4.2), checked while applying a layer so
// that errors name the tar entry.
const (
	maxNameLen    = 255
	maxTargetLen  = 4095
	maxXattrs     = 1024
	maxXattrValue = 65536
	paxXattr      = "SCHILY.xattr."
	// paxLibarchiveXattr is bsdtar's spelling.
	paxLibarchiveXattr = "LIBARCHIVE.xattr."
)

// tnode is one path of the filesystem being assembled.
type tnode struct {
	e     format.Entry      // metadata; for regular files see file
	layer int               // last layer that wrote this node or a path below it
	kids  map[string]*tnode // TypeDir
	file  *regFile          // TypeReg: shared by the paths of a hardlink group
}

// regFile is one regular file's inode: metadata and spooled content.
type regFile struct {
	e     format.Entry // Name unused
	spool string       // spool file, "" for an empty file
	links int          // paths that currently name this file
	id    uint64
}

// fsTree applies tar layers in order, as an overlay stack would present
// them, without ever touching the host filesystem except for the spool.
type fsTree struct {
	root   *tnode
	spool  *spool
	layer  int
	nextID uint64
	limits reader.Limits
	// entries and bytes count every tar entry and regular file byte of all
	// layers, replaced or not, against limits.
	entries, bytes int64
	warn           func(path string, err error)
}

func newTree(sp *spool, limits reader.Limits, warn func(string, error)) *fsTree {
	if warn == nil {
		warn = func(string, error) {}
	}
	root := &tnode{e: format.Entry{Type: format.TypeDir, Mode: 0o755}, kids: map[string]*tnode{}}
	return &fsTree{root: root, spool: sp, limits: limits, warn: warn}
}

// errEntry wraps a problem with one tar entry.
func errEntry(name string, err error) error { return fmt.Errorf("entry %q: %w", name, err) }

// splitPath cleans a tar name into components ([] for the root). Absolute
// names are taken relative to the root; a name that leaves the root through
// ".." is an error.
func splitPath(name string) ([]string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, errors.New("name contains NUL")
	}
	c := path.Clean(strings.TrimLeft(name, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return nil, errors.New("path escapes the image root")
	}
	if c == "." {
		return nil, nil
	}
	parts := strings.Split(c, "/")
	for i, p := range parts {
		if len(p) > maxNameLen {
			return nil, fmt.Errorf("path component longer than %d bytes", maxNameLen)
		}
		// A directory named like a whiteout would become one when the
		// image is exported again.
		if i < len(parts)-1 && strings.HasPrefix(p, whiteoutPrefix) {
			return nil, fmt.Errorf("directory %q has the whiteout prefix %q", p, whiteoutPrefix)
		}
	}
	return parts, nil
}

// walk returns the directory at parts. Missing directories are created when
// create is set (as tar extractors do) and otherwise make walk return nil.
// Every directory passed is marked as written by the current layer. A
// symlink or non-directory on the way is an error: following a symlink
// planted by an earlier entry is how hostile layers write outside the root.
func (t *fsTree) walk(parts []string, create bool) (*tnode, error) {
	n := t.root
	for i, p := range parts {
		if create {
			n.layer = t.layer
		}
		k := n.kids[p]
		if k == nil {
			if !create {
				return nil, nil
			}
			k = &tnode{e: format.Entry{Name: p, Type: format.TypeDir, Mode: 0o755}, kids: map[string]*tnode{}}
			n.kids[p] = k
		}
		switch k.e.Type {
		case format.TypeDir:
		case format.TypeSymlink:
			return nil, fmt.Errorf("parent %q is a symlink", strings.Join(parts[:i+1], "/"))
		default:
			return nil, fmt.Errorf("parent %q is not a directory", strings.Join(parts[:i+1], "/"))
		}
		n = k
	}
	if create {
		n.layer = t.layer
	}
	return n, nil
}

// apply adds one tar entry of the current layer; r reads a regular file's
// content.
func (t *fsTree) apply(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return errEntry(hdr.Name, fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag))
	}
	if err := t.count(hdr); err != nil {
		return errEntry(hdr.Name, err)
	}
	parts, err := splitPath(hdr.Name)
	if err != nil {
		return errEntry(hdr.Name, err)
	}
	if t.limits.MaxDepth > 0 && len(parts) > t.limits.MaxDepth {
		return errEntry(hdr.Name, fmt.Errorf("path deeper than %d", t.limits.MaxDepth))
	}
	if len(parts) > 0 && strings.HasPrefix(parts[len(parts)-1], whiteoutPrefix) {
		return t.whiteout(hdr.Name, parts)
	}
	if len(parts) == 0 {
		if hdr.Typeflag != tar.TypeDir {
			return errEntry(hdr.Name, errors.New("the image root must be a directory"))
		}
		e, err := entryFromHeader(hdr)
		if err != nil {
			return errEntry(hdr.Name, err)
		}
		t.root.e = e
		t.root.layer = t.layer
		return nil
	}
	parent, err := t.walk(parts[:len(parts)-1], true)
	if err != nil {
		return errEntry(hdr.Name, err)
	}
	base := parts[len(parts)-1]
	n, err := t.newNode(hdr, base, r)
	if err != nil {
		return errEntry(hdr.Name, err)
	}
	old := parent.kids[base]
	if n.e.Type == format.TypeDir && old != nil && old.e.Type == format.TypeDir {
		n.kids = old.kids // a directory entry over a directory only sets metadata
	} else if old != nil {
		t.release(old)
	}
	parent.kids[base] = n
	return nil
}

// count enforces the limits on what the layers may expand to: a small
// compressed layer can declare huge sparse files or millions of entries.
func (t *fsTree) count(hdr *tar.Header) error {
	t.entries++
	if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA || hdr.Typeflag == tar.TypeGNUSparse {
		t.bytes += max(hdr.Size, 0)
	}
	if l := t.limits.MaxEntries; l > 0 && t.entries > l {
		return fmt.Errorf("layers hold more than %d entries", l)
	}
	if l := t.limits.MaxBytes; l > 0 && t.bytes > l {
		return fmt.Errorf("layers hold more than %d bytes of file content", l)
	}
	return nil
}

// newNode builds the node for a non-whiteout entry.
func (t *fsTree) newNode(hdr *tar.Header, base string, r io.Reader) (*tnode, error) {
	if hdr.Typeflag == tar.TypeLink {
		return t.hardlink(hdr, base)
	}
	e, err := entryFromHeader(hdr)
	if err != nil {
		return nil, err
	}
	e.Name = base
	n := &tnode{e: e, layer: t.layer}
	switch e.Type {
	case format.TypeDir:
		n.kids = map[string]*tnode{}
	case format.TypeReg:
		f := &regFile{e: e, links: 1}
		if hdr.Size > 0 {
			if f.spool, err = t.spool.write(r, hdr.Size); err != nil {
				return nil, err
			}
		}
		t.nextID++
		f.id = t.nextID
		n.file = f
	}
	return n, nil
}

// hardlink resolves a TypeLink entry against the tree as it is now.
func (t *fsTree) hardlink(hdr *tar.Header, base string) (*tnode, error) {
	tparts, err := splitPath(hdr.Linkname)
	if err != nil {
		return nil, fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	if len(tparts) == 0 {
		return nil, fmt.Errorf("hardlink to the image root")
	}
	dir, err := t.walk(tparts[:len(tparts)-1], false)
	if err != nil {
		return nil, fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	var target *tnode
	if dir != nil {
		target = dir.kids[tparts[len(tparts)-1]]
	}
	if target == nil {
		return nil, fmt.Errorf("hardlink target %q does not exist", hdr.Linkname)
	}
	n := &tnode{e: target.e, layer: t.layer}
	n.e.Name = base
	switch target.e.Type {
	case format.TypeDir:
		return nil, fmt.Errorf("hardlink target %q is a directory", hdr.Linkname)
	case format.TypeReg:
		n.file = target.file
		n.file.links++
	default:
		// OCIv2 hardlinks name regular files only; a link to a symlink,
		// device or fifo becomes a copy.
		t.warn(hdr.Name, fmt.Errorf("hardlink to non-regular file %q stored as a copy", hdr.Linkname))
	}
	return n, nil
}

// whiteout applies ".wh.NAME" (delete NAME of earlier layers) or the opaque
// marker (hide every earlier-layer entry of the directory).
func (t *fsTree) whiteout(name string, parts []string) error {
	base := parts[len(parts)-1]
	dirParts := parts[:len(parts)-1]
	if base == whiteoutOpaque {
		dir, err := t.walk(dirParts, true)
		if err != nil {
			return errEntry(name, fmt.Errorf("opaque whiteout: %w", err))
		}
		t.clearOlder(dir)
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		t.warn(name, errors.New("aufs metadata entry skipped"))
		return nil
	}
	victim := strings.TrimPrefix(base, whiteoutPrefix)
	if victim == "" || victim == "." || victim == ".." {
		return errEntry(name, fmt.Errorf("invalid whiteout name %q", base))
	}
	dir, err := t.walk(dirParts, false)
	if err != nil {
		return errEntry(name, fmt.Errorf("whiteout: %w", err))
	}
	if dir == nil {
		return nil
	}
	// Whiteouts hide entries of lower layers only (image-spec): an entry
	// this layer wrote stays, whatever the order in the tar.
	if n := dir.kids[victim]; n != nil && n.layer < t.layer {
		t.release(n)
		delete(dir.kids, victim)
	}
	return nil
}

// clearOlder removes everything below dir that the current layer did not
// write, keeping this layer's entries (and the directories above them).
func (t *fsTree) clearOlder(dir *tnode) {
	for name, k := range dir.kids {
		switch {
		case k.layer < t.layer:
			t.release(k)
			delete(dir.kids, name)
		case k.e.Type == format.TypeDir:
			t.clearOlder(k)
		}
	}
}

// release forgets n and everything below it, dropping spool files no path
// names any more.
func (t *fsTree) release(n *tnode) {
	if n.file != nil {
		n.file.links--
		if n.file.links == 0 {
			t.spool.remove(n.file.spool)
		}
	}
	for _, k := range n.kids {
		t.release(k)
	}
}

// build returns the writer's node tree. Regular files named by several
// paths get a shared Inode so the writer stores them as one hardlink group.
func (t *fsTree) build() *writer.Node {
	return t.buildNode(t.root)
}

func (t *fsTree) buildNode(n *tnode) *writer.Node {
	out := &writer.Node{Entry: n.e}
	if f := n.file; f != nil {
		out.Entry = f.e
		out.Entry.Name = n.e.Name
		out.Content = spoolContent(f.spool)
		if f.links > 1 {
			out.Inode = f.id
		}
	}
	if n.e.Type == format.TypeDir {
		names := make([]string, 0, len(n.kids))
		for name := range n.kids {
			names = append(names, name)
		}
		sort.Strings(names)
		out.Children = make([]*writer.Node, 0, len(names))
		for _, name := range names {
			out.Children = append(out.Children, t.buildNode(n.kids[name]))
		}
	}
	return out
}
