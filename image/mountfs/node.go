package mountfs

import (
	"context"
	"sort"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
)

// node is the go-fuse side of an inode. go-fuse keeps one node per inode
// number, so all names of a hardlink group share it.
type node struct {
	fs.Inode
	fsys *FS
	ino  uint64
}

var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeReaddirer      = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeGetxattrer     = (*node)(nil)
	_ fs.NodeListxattrer    = (*node)(nil)
	_ fs.NodeReadlinker     = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeReader         = (*node)(nil)
	_ fs.NodeLseeker        = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
)

func (n *node) inode() *inode { return n.fsys.t.get(n.ino) }

// typeBits maps an entry type to the S_IFMT bits.
func typeBits(t format.EntryType) uint32 {
	switch t {
	case format.TypeDir:
		return unix.S_IFDIR
	case format.TypeSymlink:
		return unix.S_IFLNK
	case format.TypeChar:
		return unix.S_IFCHR
	case format.TypeBlock:
		return unix.S_IFBLK
	case format.TypeFifo:
		return unix.S_IFIFO
	}
	return unix.S_IFREG
}

// fillAttr is what stat shows of an inode, as an unpack onto ext4 shows it
// (atime and ctime are the mtime, as unpack sets them).
func (fsys *FS) fillAttr(ino uint64, out *fuse.Attr) {
	in := fsys.t.get(ino)
	e := &in.e
	out.Ino = ino
	out.Mode = typeBits(e.Type) | e.Mode
	out.Nlink = in.nlink
	out.Owner = fuse.Owner{Uid: e.UID, Gid: e.GID}
	sec, nsec := uint64(e.MtimeSec), uint32(e.MtimeNsec)
	out.Mtime, out.Mtimensec = sec, nsec
	out.Atime, out.Atimensec = sec, nsec
	out.Ctime, out.Ctimensec = sec, nsec
	out.Blksize = blockSize
	switch e.Type {
	case format.TypeReg:
		out.Size, out.Blocks = e.Size, in.blocks()
	case format.TypeSymlink:
		out.Size = uint64(len(e.Target))
		out.Mode = unix.S_IFLNK | 0o777
	case format.TypeDir:
		out.Size = blockSize
		out.Blocks = blockSize / 512
	case format.TypeChar, format.TypeBlock:
		out.Rdev = uint32(unix.Mkdev(e.DevMajor, e.DevMinor)) // the kernel's new_encode_dev (checkEntry bounds it)
	}
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fsys.fillAttr(n.ino, &out.Attr)
	out.SetTimeout(n.fsys.timeout)
	return 0
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ino, ok := n.fsys.t.lookup(n.ino, name)
	if !ok {
		return nil, syscall.ENOENT
	}
	n.fsys.fillAttr(ino, &out.Attr)
	out.SetEntryTimeout(n.fsys.timeout)
	out.SetAttrTimeout(n.fsys.timeout)
	child := &node{fsys: n.fsys, ino: ino}
	return n.NewInode(ctx, child, fs.StableAttr{Mode: out.Attr.Mode & unix.S_IFMT, Ino: ino}), 0
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	in := n.inode()
	ents := make([]fuse.DirEntry, 0, 2+len(in.children))
	ents = append(ents, fuse.DirEntry{Name: ".", Ino: n.ino, Mode: unix.S_IFDIR},
		fuse.DirEntry{Name: "..", Ino: in.parent, Mode: unix.S_IFDIR})
	for _, c := range in.children {
		ents = append(ents, fuse.DirEntry{Name: c.name, Ino: c.ino, Mode: typeBits(n.fsys.t.get(c.ino).e.Type)})
	}
	return fs.NewListDirStream(ents), 0
}

// OpendirHandle lets the kernel cache the listing (the directory never
// changes); the list stream is its own handle (it reads and seeks).
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ds, errno := n.Readdir(ctx)
	return ds, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, errno
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	e := &n.inode().e
	if e.Type != format.TypeSymlink {
		return nil, syscall.EINVAL
	}
	return []byte(e.Target), 0
}

// hiddenXattr reports names never served: SPEC.md §4.2 forbids them in
// images, and an image must not steer the overlay stacked on the mount.
func hiddenXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	xs := n.inode().e.Xattrs
	i := sort.Search(len(xs), func(i int) bool { return xs[i].Name >= attr })
	if i == len(xs) || xs[i].Name != attr || hiddenXattr(attr) {
		return 0, syscall.ENODATA
	}
	v := xs[i].Value
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	var list []byte
	for _, x := range n.inode().e.Xattrs {
		if !hiddenXattr(x.Name) {
			list = append(append(list, x.Name...), 0)
		}
	}
	if len(dest) < len(list) {
		return uint32(len(list)), syscall.ERANGE
	}
	return uint32(copy(dest, list)), 0
}

// Open keeps the page cache across opens: the image never changes.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	// ENOSYS: the kernel stops sending opens for files (FUSE's no_open),
	// which saves a round trip per open, and keeps their page cache.
	return nil, 0, syscall.ENOSYS
}

func (n *node) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	in := n.inode()
	if in.e.Type != format.TypeReg {
		return nil, syscall.EINVAL
	}
	got, err := n.fsys.read(ctx, n.ino, dest, uint64(off))
	if err != nil {
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:got]), 0
}

func (n *node) Lseek(ctx context.Context, f fs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	in := n.inode()
	if off >= in.e.Size {
		return 0, syscall.ENXIO
	}
	switch whence {
	case unix.SEEK_DATA:
		if d, ok := in.seekData(off); ok {
			return d, 0
		}
		return 0, syscall.ENXIO
	case unix.SEEK_HOLE:
		return in.seekHole(off), 0
	}
	return 0, syscall.EINVAL
}

// Statfs reports the image: logical bytes in 4 KiB blocks, one file per
// name, nothing free.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize, out.Frsize = blockSize, blockSize
	out.Blocks = uint64(n.fsys.t.bytes+blockSize-1) / blockSize
	out.Files = uint64(n.fsys.t.entries)
	out.NameLen = 255
	return 0
}
