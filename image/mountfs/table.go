package mountfs

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
)

// rootIno is the root directory's inode number.
const rootIno = 1

// FUSE passes device numbers as 32 bits, split by the kernel's
// new_decode_dev: 12 bits of major, 20 of minor.
const (
	maxFUSEMajor = 1<<12 - 1
	maxFUSEMinor = 1<<20 - 1
)

// inode is one file of the image: the entry that carries its metadata (for
// a hardlink group, the regular file the group's hardlink entries name).
type inode struct {
	e        format.Entry // shallow copy: Xattrs and Extents share the decoded tree's slices
	nlink    uint32
	parent   uint64   // directories: the one containing it (the root: itself)
	children []dirent // directories: sorted by name, as in the tree object

	offs atomic.Pointer[[]uint64] // regular files: start offset of each extent, built on first read

	fetchMu sync.Mutex // regular files: one fetch ahead at a time
	fetched bool       // the whole file was fetched ahead
}

// dirent is a name in a directory.
type dirent struct {
	name string
	ino  uint64
}

// table is an image's inodes, indexed by inode number - 1. Inode numbers
// are the canonical pre-order position of each inode among the image's
// entries (hardlink entries take their target's), so they are the same on
// every mount of the image.
type table struct {
	inodes  []inode
	entries int64 // names, the root included (statfs files)
	bytes   int64 // logical bytes of regular files
}

func (t *table) get(ino uint64) *inode { return &t.inodes[ino-1] }

// build walks the image's tree once (validating it: limits, names,
// hardlinks) and returns its inode table.
func build(ctx context.Context, img *reader.Image, cr *reader.ChunkReader, limits reader.Limits) (*table, error) {
	t := &table{}
	var stack []uint64 // directories being walked, root first
	pre := func(p string, e *format.Entry) error {
		t.entries++
		if e.Type == format.TypeHardlink {
			ino, err := t.resolve(e.Target)
			if err != nil {
				return fmt.Errorf("%w: %q: %w", reader.ErrInvalidImage, "/"+p, err)
			}
			t.get(ino).nlink++
			t.addChild(stack[len(stack)-1], e.Name, ino)
			return nil
		}
		if err := checkEntry(p, e); err != nil {
			return err
		}
		t.inodes = append(t.inodes, inode{e: *e, nlink: 1})
		ino := uint64(len(t.inodes))
		if p != "" {
			parent := stack[len(stack)-1]
			t.addChild(parent, e.Name, ino)
			if e.Type == format.TypeDir {
				t.get(parent).nlink++
			}
		}
		switch e.Type {
		case format.TypeDir:
			d := t.get(ino)
			d.nlink, d.parent = 2, ino
			if p != "" {
				d.parent = stack[len(stack)-1]
			}
			stack = append(stack, ino)
		case format.TypeReg:
			t.bytes += int64(e.Size)
		}
		return nil
	}
	post := func(string, *format.Entry) error {
		stack = stack[:len(stack)-1]
		return nil
	}
	if err := reader.WalkPrePost(ctx, cr, img.Root, limits, pre, post); err != nil {
		return nil, fmt.Errorf("loading the image's metadata: %w", err)
	}
	return t, nil
}

// checkEntry refuses what a FUSE filesystem cannot serve exactly.
func checkEntry(p string, e *format.Entry) error {
	switch e.Type {
	case format.TypeChar, format.TypeBlock:
		if e.DevMajor > maxFUSEMajor || e.DevMinor > maxFUSEMinor {
			return fmt.Errorf("%q: device %d:%d does not fit FUSE's 32-bit device numbers (major < %d, minor < %d): %w",
				"/"+p, e.DevMajor, e.DevMinor, maxFUSEMajor+1, maxFUSEMinor+1, ErrUnsupported)
		}
	case format.TypeReg:
		if sum := format.ExtentsSize(e.Extents); sum != e.Size {
			return fmt.Errorf("%w: %q: extents add up to %d bytes, size is %d", reader.ErrInvalidImage, "/"+p, sum, e.Size)
		}
	}
	return nil
}

// addChild appends a name to a directory; the walk visits names in sorted
// order, so children stay sorted.
func (t *table) addChild(dir uint64, name string, ino uint64) {
	d := t.get(dir)
	d.children = append(d.children, dirent{name: name, ino: ino})
}

// lookup finds name in directory dir.
func (t *table) lookup(dir uint64, name string) (uint64, bool) {
	cs := t.get(dir).children
	i := sort.Search(len(cs), func(i int) bool { return cs[i].name >= name })
	if i < len(cs) && cs[i].name == name {
		return cs[i].ino, true
	}
	return 0, false
}

// resolve finds a hardlink target (a slash path from the root) among the
// inodes added so far; the walk has checked that it names a regular file
// preceding the link.
func (t *table) resolve(target string) (uint64, error) {
	ino := uint64(rootIno)
	for _, c := range strings.Split(target, "/") {
		next, ok := t.lookup(ino, c)
		if !ok {
			return 0, fmt.Errorf("hardlink target %q not found", "/"+target)
		}
		ino = next
	}
	if t.get(ino).e.Type != format.TypeReg {
		return 0, fmt.Errorf("hardlink target %q is not a regular file", "/"+target)
	}
	return ino, nil
}
