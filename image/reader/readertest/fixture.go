package readertest

import (
	"bytes"
	"sort"

	"github.com/oci2/oci2/format"
)

// FixtureMtime is the mtime fixture constructors give every entry.
const (
	FixtureMtimeSec  = 1700000000
	FixtureMtimeNsec = 123456789
)

// Node is a fixture entry: Entry carries the metadata (Name, Type, Mode,
// UID, GID, mtime, xattrs, Target, device numbers). Directories list
// Children (sorted by name when encoded unless Unsorted); regular files
// carry Content, cut into extents by Split unless Entry.Extents is set.
type Node struct {
	format.Entry
	Children []*Node
	Content  []byte
	// Unsorted keeps Children in the given order (an invalid tree).
	Unsorted bool
	// RawTree, for a directory, replaces its encoded tree object verbatim.
	RawTree []byte
	// KeepSize keeps Entry.Size instead of the length of Content.
	KeepSize bool
}

func meta(name string, t format.EntryType, mode uint32) format.Entry {
	return format.Entry{Name: name, Type: t, Mode: mode, MtimeSec: FixtureMtimeSec, MtimeNsec: FixtureMtimeNsec}
}

// Dir returns a directory fixture.
func Dir(name string, mode uint32, children ...*Node) *Node {
	return &Node{Entry: meta(name, format.TypeDir, mode), Children: children}
}

// File returns a regular file fixture.
func File(name string, mode uint32, content []byte) *Node {
	return &Node{Entry: meta(name, format.TypeReg, mode), Content: content}
}

// Symlink returns a symlink fixture.
func Symlink(name, target string) *Node {
	n := &Node{Entry: meta(name, format.TypeSymlink, 0o777)}
	n.Target = target
	return n
}

// Hardlink returns a hardlink fixture to target (a path from the root).
func Hardlink(name, target string) *Node {
	return &Node{Entry: format.Entry{Name: name, Type: format.TypeHardlink, Target: target}}
}

// Fifo returns a named pipe fixture.
func Fifo(name string, mode uint32) *Node { return &Node{Entry: meta(name, format.TypeFifo, mode)} }

// Device returns a character (TypeChar) or block (TypeBlock) device fixture.
func Device(name string, t format.EntryType, mode, major, minor uint32) *Node {
	n := &Node{Entry: meta(name, t, mode)}
	n.DevMajor, n.DevMinor = major, minor
	return n
}

// fixtureChunk is the data chunk size of Split (any size up to
// format.ChunkMaxSize decodes; fixtures need not be content-defined).
const fixtureChunk = 64 << 10

// Split cuts content into extents as SPEC.md §3 does for zero runs (aligned
// all-zero 4 KiB blocks, runs of at least 32 KiB) but with fixed-size data
// chunks. It returns the extents and the data chunks in order.
func Split(content []byte) ([]format.Extent, [][]byte) {
	var exts []format.Extent
	var chunks [][]byte
	data := func(b []byte) {
		for len(b) > 0 {
			n := min(len(b), fixtureChunk)
			exts = append(exts, format.Extent{Length: uint64(n), Chunk: format.Sum(b[:n])})
			chunks = append(chunks, b[:n])
			b = b[n:]
		}
	}
	zero := make([]byte, format.ZeroBlockSize)
	start := 0 // start of the pending data segment
	for off := 0; off+format.ZeroBlockSize <= len(content); {
		run := off
		for run+format.ZeroBlockSize <= len(content) && bytes.Equal(content[run:run+format.ZeroBlockSize], zero) {
			run += format.ZeroBlockSize
		}
		if run-off >= format.ZeroRunMin {
			data(content[start:off])
			exts = append(exts, format.Extent{Zero: true, Length: uint64(run - off)})
			start = run
			off = run
			continue
		}
		off = max(run, off+format.ZeroBlockSize)
	}
	data(content[start:])
	return exts, chunks
}

// Streams are an image's chunks in stream order (SPEC.md §5.1).
type Streams struct {
	Root  format.ChunkID // the root wrapper
	Trees [][]byte       // the root wrapper first, then directories in pre-order
	Data  [][]byte
}

// Encode turns a fixture into its streams. root's metadata goes into the
// root wrapper; its Name is ignored.
func Encode(root *Node) Streams {
	enc := map[*Node][]byte{}
	encodeDir(root, enc)
	wrapper := Wrapper(format.Sum(enc[root]), root.Entry)
	s := Streams{Root: format.Sum(wrapper), Trees: [][]byte{wrapper}}
	seenT := map[format.ChunkID]bool{s.Root: true}
	seenD := map[format.ChunkID]bool{}
	var walk func(n *Node)
	walk = func(n *Node) {
		if b := enc[n]; b != nil {
			if id := format.Sum(b); !seenT[id] {
				seenT[id] = true
				s.Trees = append(s.Trees, b)
			}
		}
		for _, c := range children(n) {
			switch c.Type {
			case format.TypeDir:
				walk(c)
			case format.TypeReg:
				_, chunks := fileExtents(c)
				for _, ch := range chunks {
					if id := format.Sum(ch); !seenD[id] {
						seenD[id] = true
						s.Data = append(s.Data, ch)
					}
				}
			}
		}
	}
	walk(root)
	return s
}

func children(n *Node) []*Node {
	cs := append([]*Node(nil), n.Children...)
	if !n.Unsorted {
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	}
	return cs
}

func fileExtents(n *Node) ([]format.Extent, [][]byte) {
	exts, chunks := Split(n.Content)
	if n.Extents != nil {
		exts = n.Extents
	}
	return exts, chunks
}

func encodeDir(n *Node, enc map[*Node][]byte) {
	var entries []format.Entry
	for _, c := range children(n) {
		e := c.Entry
		switch c.Type {
		case format.TypeDir:
			encodeDir(c, enc)
			e.Tree = format.Sum(enc[c])
		case format.TypeReg:
			if e.Extents == nil {
				e.Extents, _ = Split(c.Content)
			}
			if !c.KeepSize {
				e.Size = uint64(len(c.Content))
			}
		}
		entries = append(entries, e)
	}
	if n.RawTree != nil {
		enc[n] = n.RawTree
		return
	}
	enc[n] = RawTree(entries...)
}
