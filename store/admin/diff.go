package admin

import (
	"bytes"
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store/framesource"
)

// ChangeKind says how a path differs between two images.
type ChangeKind string

// Change kinds, as in `docker diff`.
const (
	Added    ChangeKind = "added"
	Removed  ChangeKind = "removed"
	Modified ChangeKind = "modified"
)

// Change is one path that differs. An added or removed directory is reported
// once, not with every path below it.
type Change struct {
	Path string     `json:"path"` // absolute, "/" for the root directory
	Kind ChangeKind `json:"kind"`
	Type string     `json:"type"` // entry type in B, or in A when removed
	// Content is set for a modified path whose type, file data, link target
	// or device numbers differ; Metadata when its mode, owner, mtime or
	// xattrs do.
	Content  bool `json:"content,omitempty"`
	Metadata bool `json:"metadata,omitempty"`
}

// Side is one image of a Diff: a chunk reader over it and its root wrapper.
type Side struct {
	Chunks *reader.ChunkReader
	Root   format.ChunkID
}

// OpenSide opens the manifest desc in a local store for Diff.
func OpenSide(ctx context.Context, r framesource.Store, desc ocispec.Descriptor) (Side, error) {
	img, err := reader.Open(ctx, r, desc)
	if err != nil {
		return Side{}, err
	}
	return Side{Chunks: reader.NewChunkReader(img, framesource.New(r, nil)), Root: img.Root}, nil
}

// Diff compares the trees of a and b in canonical order. It descends only
// into directories whose tree digests differ, so unchanged subtrees cost
// nothing: the work is proportional to what changed. A hardlink entry is
// compared by its target path only (its content lives on the target, which is
// reported itself when it changes). The walk is bounded by
// reader.DefaultLimits (entries compared, depth).
func Diff(ctx context.Context, a, b Side) ([]Change, error) {
	d := &differ{a: a.Chunks, b: b.Chunks, limits: reader.DefaultLimits, out: []Change{}}
	if a.Root == b.Root {
		return d.out, nil
	}
	ta, err := a.Chunks.Tree(ctx, a.Root)
	if err != nil {
		return nil, fmt.Errorf("reading root of A: %w", err)
	}
	tb, err := b.Chunks.Tree(ctx, b.Root)
	if err != nil {
		return nil, fmt.Errorf("reading root of B: %w", err)
	}
	if len(ta.Entries) != 1 || len(tb.Entries) != 1 || ta.Entries[0].Type != format.TypeDir || tb.Entries[0].Type != format.TypeDir {
		return nil, fmt.Errorf("root wrapper is not one directory entry")
	}
	ea, eb := &ta.Entries[0], &tb.Entries[0]
	if !sameMeta(ea, eb) {
		d.out = append(d.out, Change{Path: "/", Kind: Modified, Type: typeName(format.TypeDir), Metadata: true})
	}
	if ea.Tree != eb.Tree {
		if err := d.dir(ctx, "", ea.Tree, eb.Tree, 1); err != nil {
			return nil, err
		}
	}
	return d.out, nil
}

type differ struct {
	a, b    *reader.ChunkReader
	limits  reader.Limits
	entries int64
	out     []Change
}

// dir compares two directories at path ("" for the root; children are
// path + "/" + name).
func (d *differ) dir(ctx context.Context, path string, da, db format.ChunkID, depth int) error {
	if depth > d.limits.MaxDepth {
		return fmt.Errorf("%s: deeper than %d directories", abs(path), d.limits.MaxDepth)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ta, err := d.a.Tree(ctx, da)
	if err != nil {
		return fmt.Errorf("reading %s of A: %w", abs(path), err)
	}
	tb, err := d.b.Tree(ctx, db)
	if err != nil {
		return fmt.Errorf("reading %s of B: %w", abs(path), err)
	}
	d.entries += int64(len(ta.Entries) + len(tb.Entries))
	if d.entries > d.limits.MaxEntries {
		return fmt.Errorf("more than %d entries compared", d.limits.MaxEntries)
	}
	i, j := 0, 0
	for i < len(ta.Entries) || j < len(tb.Entries) {
		var cmp int
		switch {
		case i == len(ta.Entries):
			cmp = 1
		case j == len(tb.Entries):
			cmp = -1
		default:
			cmp = bytes.Compare([]byte(ta.Entries[i].Name), []byte(tb.Entries[j].Name))
		}
		switch {
		case cmp < 0:
			e := &ta.Entries[i]
			d.out = append(d.out, Change{Path: abs(join(path, e.Name)), Kind: Removed, Type: typeName(e.Type)})
			i++
		case cmp > 0:
			e := &tb.Entries[j]
			d.out = append(d.out, Change{Path: abs(join(path, e.Name)), Kind: Added, Type: typeName(e.Type)})
			j++
		default:
			if err := d.entry(ctx, join(path, ta.Entries[i].Name), &ta.Entries[i], &tb.Entries[j], depth); err != nil {
				return err
			}
			i++
			j++
		}
	}
	return nil
}

func (d *differ) entry(ctx context.Context, path string, ea, eb *format.Entry, depth int) error {
	meta := !sameMeta(ea, eb)
	content := ea.Type != eb.Type || !sameContent(ea, eb)
	if meta || content {
		d.out = append(d.out, Change{Path: abs(path), Kind: Modified, Type: typeName(eb.Type), Content: content, Metadata: meta})
	}
	if ea.Type == format.TypeDir && eb.Type == format.TypeDir && ea.Tree != eb.Tree {
		return d.dir(ctx, path, ea.Tree, eb.Tree, depth+1)
	}
	return nil
}

// sameMeta compares the metadata of two entries (not their names).
func sameMeta(a, b *format.Entry) bool {
	if a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID ||
		a.MtimeSec != b.MtimeSec || a.MtimeNsec != b.MtimeNsec || len(a.Xattrs) != len(b.Xattrs) {
		return false
	}
	for i := range a.Xattrs {
		if a.Xattrs[i].Name != b.Xattrs[i].Name || !bytes.Equal(a.Xattrs[i].Value, b.Xattrs[i].Value) {
			return false
		}
	}
	return true
}

// sameContent compares what two entries of the same type hold. Directories
// compare equal here: their children are compared one by one.
func sameContent(a, b *format.Entry) bool {
	switch a.Type {
	case format.TypeReg:
		if a.Size != b.Size || len(a.Extents) != len(b.Extents) {
			return false
		}
		for i := range a.Extents {
			if a.Extents[i] != b.Extents[i] {
				return false
			}
		}
		return true
	case format.TypeSymlink, format.TypeHardlink:
		return a.Target == b.Target
	case format.TypeChar, format.TypeBlock:
		return a.DevMajor == b.DevMajor && a.DevMinor == b.DevMinor
	default:
		return true
	}
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func abs(path string) string { return "/" + path }

func typeName(t format.EntryType) string {
	switch t {
	case format.TypeDir:
		return "dir"
	case format.TypeReg:
		return "file"
	case format.TypeSymlink:
		return "symlink"
	case format.TypeHardlink:
		return "hardlink"
	case format.TypeChar:
		return "char"
	case format.TypeBlock:
		return "block"
	case format.TypeFifo:
		return "fifo"
	default:
		return fmt.Sprintf("type%d", t)
	}
}
