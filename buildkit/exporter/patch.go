package exporter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/containerd/continuity/sysx"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
)

// errNoDiff means a layer's changes cannot be read from its overlayfs
// upper directory (redirect_dir in use): the caller walks the whole result.
var errNoDiff = errors.New("layer diff not readable from its upper directory")

// patcher applies one overlayfs layer to the tree of the layers below it,
// in place. The upper directory holds exactly what the layer changed (what
// BuildKit's overlay differ turns into a layer blob): new and modified
// entries, whiteouts (character devices 0/0) for deletions, and opaque
// directories (xattr overlay.opaque=y) that hide everything below them.
// Metadata and contents are read from view, the mounted layer chain, so
// an entry is exactly what a walk of the whole chain would give.
type patcher struct {
	upper string         // the layer's upper directory
	view  *writer.Walker // the merged chain up to and including the layer
	index map[*writer.Node]map[string]int
	n     int64 // entries read
}

func applyLayer(ctx context.Context, root *writer.Node, upper string, view *writer.Walker) (int64, error) {
	p := &patcher{upper: upper, view: view, index: map[*writer.Node]map[string]int{}}
	// The root's own metadata may change with any layer.
	r, err := view.Entry("")
	if err != nil {
		return 0, err
	}
	if r == nil || r.Type != format.TypeDir {
		return 0, fmt.Errorf("layer root is not a directory")
	}
	setMeta(root, r)
	if err := p.dir(ctx, root, ""); err != nil {
		return p.n, err
	}
	return p.n, nil
}

// dir applies the upper directory's entries below rel, whose node is d.
func (p *patcher) dir(ctx context.Context, d *writer.Node, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	up := p.upper
	if rel != "" {
		up = p.upper + "/" + rel
	}
	// A directory only, never through a symlink: the upper directory is
	// the snapshot's, and the lstat that chose it may be stale.
	f, err := os.OpenFile(up, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("reading layer: %w", err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("reading layer: %w", err)
	}
	for _, name := range names {
		crel := name
		if rel != "" {
			crel = rel + "/" + name
		}
		var st unix.Stat_t
		if err := unix.Lstat(up+"/"+name, &st); err != nil {
			return fmt.Errorf("reading layer: %w", &os.PathError{Op: "lstat", Path: up + "/" + name, Err: err})
		}
		p.n++
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			if st.Rdev == 0 { // whiteout
				p.remove(d, name)
				continue
			}
		case unix.S_IFDIR:
			if err := p.subdir(ctx, d, name, crel, up+"/"+name); err != nil {
				return err
			}
			continue
		}
		n, err := p.view.Entry(crel)
		if err != nil {
			return err
		}
		p.set(d, name, n)
	}
	return nil
}

// subdir applies an upper directory: a directory also present below keeps
// its children and gets the upper's changes; a new or opaque one is read
// whole from the view.
func (p *patcher) subdir(ctx context.Context, d *writer.Node, name, crel, up string) error {
	if v, err := overlayXattr(up, "trusted.overlay.redirect"); err != nil {
		return err
	} else if v != nil {
		return fmt.Errorf("%s: %w", crel, errNoDiff)
	}
	old := p.child(d, name)
	opaque := false
	for _, k := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		v, err := overlayXattr(up, k)
		if err != nil {
			return err
		}
		opaque = opaque || string(v) == "y"
	}
	if old == nil || old.Type != format.TypeDir || opaque {
		n, err := p.view.Tree(ctx, crel)
		if err != nil {
			return err
		}
		p.n += countNodes(n)
		p.set(d, name, n)
		return nil
	}
	n, err := p.view.Entry(crel)
	if err != nil {
		return err
	}
	if n == nil || n.Type != format.TypeDir {
		p.set(d, name, n)
		return nil
	}
	setMeta(old, n)
	return p.dir(ctx, old, crel)
}

// setMeta gives directory d the metadata of n, keeping d's children.
func setMeta(d, n *writer.Node) {
	kids := d.Children
	*d = *n
	d.Children = kids
}

// child returns d's child called name, or nil.
func (p *patcher) child(d *writer.Node, name string) *writer.Node {
	if i, ok := p.names(d)[name]; ok {
		return d.Children[i]
	}
	return nil
}

// set replaces (or adds) d's child name with n; nil removes it.
func (p *patcher) set(d *writer.Node, name string, n *writer.Node) {
	if n == nil {
		p.remove(d, name)
		return
	}
	idx := p.names(d)
	if i, ok := idx[name]; ok {
		d.Children[i] = n
		return
	}
	idx[name] = len(d.Children)
	d.Children = append(d.Children, n)
}

func (p *patcher) remove(d *writer.Node, name string) {
	idx := p.names(d)
	i, ok := idx[name]
	if !ok {
		return
	}
	last := len(d.Children) - 1
	d.Children[i] = d.Children[last]
	idx[d.Children[i].Name] = i
	d.Children = d.Children[:last]
	delete(idx, name)
}

// names indexes d's children by name, once per directory touched.
func (p *patcher) names(d *writer.Node) map[string]int {
	if m, ok := p.index[d]; ok {
		return m
	}
	m := make(map[string]int, len(d.Children))
	for i, c := range d.Children {
		m[c.Name] = i
	}
	p.index[d] = m
	return m
}

func countNodes(n *writer.Node) int64 {
	if n == nil {
		return 0
	}
	c := int64(1)
	for _, k := range n.Children {
		c += countNodes(k)
	}
	return c
}

// cloneTree copies n and its subtree; contents and extents are shared
// (nothing modifies them in place).
func cloneTree(n *writer.Node) *writer.Node {
	c := *n
	if len(n.Children) > 0 {
		c.Children = make([]*writer.Node, len(n.Children))
		for i, k := range n.Children {
			c.Children[i] = cloneTree(k)
		}
	}
	return &c
}

// rebind points every regular file's content at the same path under dir
// (the mounted result), whose device is dev, keeping the identity it was
// walked with: an unchanged file has the same inode in every overlayfs
// mount of the chain, and SourceFile.Open refuses any other file.
func rebind(n *writer.Node, dir string, dev uint64, rel string) {
	for _, c := range n.Children {
		crel := path.Join(rel, c.Name)
		switch c.Type {
		case format.TypeDir:
			rebind(c, dir, dev, crel)
		case format.TypeReg:
			if sf, ok := c.Content.(*writer.SourceFile); ok {
				nf := *sf
				nf.Dir, nf.Rel, nf.Path, nf.Dev = dir, crel, dir+"/"+crel, dev
				c.Content = &nf
			}
		}
	}
}

// overlayXattr returns the value of overlayfs attribute name of path (not
// following a symlink), nil when it has none.
func overlayXattr(path, name string) ([]byte, error) {
	v, err := sysx.LGetxattr(path, name)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading layer: %w", &os.PathError{Op: "getxattr " + name, Path: path, Err: err})
	}
	return v, nil
}
