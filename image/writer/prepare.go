package writer

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/oci2/oci2/format"
)

// wnode is the writer's canonical copy of a Node: the caller's tree is never
// modified.
type wnode struct {
	n        *Node
	e        format.Entry    // canonical entry (clamped, hardlinks resolved)
	kids     []*wnode        // sorted by name bytes
	cached   bool            // extents came from the files cache
	cand     []format.Extent // Node.Candidate, when it covers the file's size
	verified bool            // extents are cand, checked against the bytes
	enc      []byte          // TypeDir: encoded tree object
}

// plan is the canonical walk of an image: its files and directories in
// canonical order.
type plan struct {
	root    *wnode
	files   []*wnode // TypeReg, canonical order (hardlinked copies excluded)
	dirs    []*wnode // pre-order, root first
	entries int64
	bytes   int64 // logical bytes of files
	// presetLinks are TypeHardlink nodes given by the caller, checked later.
	presetLinks bool
}

// prepare validates root and builds the canonical plan (SPEC.md §4.3).
func prepare(root *Node, epoch *time.Time) (*plan, error) {
	if root == nil || root.Type != format.TypeDir {
		return nil, errors.New("root must be a directory")
	}
	p := &plan{}
	b := builder{p: p, epoch: epoch, groups: make(map[uint64]string)}
	r, err := b.node(root, "", 0)
	if err != nil {
		return nil, err
	}
	r.e.Name = "rootfs"
	p.root = r
	if p.entries > format.MaxImageEntries {
		return nil, fmt.Errorf("%d entries, more than readers accept (%d)", p.entries, format.MaxImageEntries)
	}
	if p.bytes > format.MaxImageBytes {
		return nil, fmt.Errorf("%d bytes of files, more than readers accept (%d)", p.bytes, int64(format.MaxImageBytes))
	}
	if p.presetLinks {
		if err := checkPresetLinks(r); err != nil {
			return nil, err
		}
	}
	return p, nil
}

type builder struct {
	p      *plan
	epoch  *time.Time
	groups map[uint64]string // Inode -> path of the group's regular file
}

// node copies n (at slash path path) and its subtree in canonical order.
func (b *builder) node(n *Node, path string, depth int) (*wnode, error) {
	w := &wnode{n: n, e: n.Entry}
	w.e.Xattrs = append([]format.Xattr(nil), n.Xattrs...)
	sort.Slice(w.e.Xattrs, func(i, j int) bool { return w.e.Xattrs[i].Name < w.e.Xattrs[j].Name })
	b.p.entries++
	if b.epoch != nil {
		clamp(&w.e, *b.epoch)
	}
	switch w.e.Type {
	case format.TypeDir:
		if depth >= format.MaxTreeDepth {
			return nil, fmt.Errorf("%s: directory depth over %d", show(path), format.MaxTreeDepth)
		}
		b.p.dirs = append(b.p.dirs, w)
		return w, b.children(w, path, depth)
	case format.TypeReg:
		if n.Inode != 0 {
			if target, ok := b.groups[n.Inode]; ok {
				w.e = format.Entry{Name: w.e.Name, Type: format.TypeHardlink, Target: target}
				return w, nil
			}
			b.groups[n.Inode] = path
		}
		w.e.Extents = append([]format.Extent(nil), n.Extents...)
		if len(n.Extents) == 0 && format.ExtentsSize(n.Candidate) == w.e.Size {
			w.cand = n.Candidate
		}
		if n.Content == nil && len(n.Extents) == 0 && n.Size > 0 {
			return nil, fmt.Errorf("%s: regular file without content or extents", show(path))
		}
		b.p.files = append(b.p.files, w)
		b.p.bytes += int64(w.e.Size)
	case format.TypeHardlink:
		// the inode's metadata lives on the target entry
		w.e = format.Entry{Name: w.e.Name, Type: format.TypeHardlink, Target: w.e.Target}
		b.p.presetLinks = true
	case format.TypeSymlink, format.TypeChar, format.TypeBlock, format.TypeFifo:
	default:
		return nil, fmt.Errorf("%s: unknown entry type %d", show(path), w.e.Type)
	}
	if len(n.Children) > 0 {
		return nil, fmt.Errorf("%s: only directories have children", show(path))
	}
	return w, nil
}

func (b *builder) children(w *wnode, path string, depth int) error {
	kids := append([]*Node(nil), w.n.Children...)
	sort.Slice(kids, func(i, j int) bool { return kids[i].Name < kids[j].Name })
	w.kids = make([]*wnode, 0, len(kids))
	for i, k := range kids {
		if err := validName(k.Name); err != nil {
			return fmt.Errorf("%s: %w", show(path), err)
		}
		if i > 0 && kids[i-1].Name == k.Name {
			return fmt.Errorf("%s: duplicate entry %q", show(path), k.Name)
		}
		kp := k.Name
		if path != "" {
			kp = path + "/" + k.Name
		}
		c, err := b.node(k, kp, depth+1)
		if err != nil {
			return err
		}
		w.kids = append(w.kids, c)
	}
	return nil
}

// clamp applies SOURCE_DATE_EPOCH: mtimes later than epoch become epoch.
func clamp(e *format.Entry, epoch time.Time) {
	sec := epoch.Unix()
	if e.MtimeSec > sec || (e.MtimeSec == sec && e.MtimeNsec > 0) {
		e.MtimeSec, e.MtimeNsec = sec, 0
	}
}

func validName(name string) error {
	switch {
	case name == "" || len(name) > format.MaxNameLen:
		return fmt.Errorf("invalid entry name %q: length %d", name, len(name))
	case name == "." || name == "..":
		return fmt.Errorf("invalid entry name %q", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("invalid entry name %q: contains / or NUL", name)
	}
	return nil
}

// checkPresetLinks checks that every hardlink given by the caller names a
// regular file that precedes it in canonical order.
func checkPresetLinks(root *wnode) error {
	regs := make(map[string]bool)
	var walk func(w *wnode, path string) error
	walk = func(w *wnode, path string) error {
		for _, k := range w.kids {
			kp := k.e.Name
			if path != "" {
				kp = path + "/" + k.e.Name
			}
			switch k.e.Type {
			case format.TypeReg:
				regs[kp] = true
			case format.TypeHardlink:
				if !regs[k.e.Target] {
					return fmt.Errorf("%s: hardlink target %q is not a regular file before it", kp, k.e.Target)
				}
			case format.TypeDir:
				if err := walk(k, kp); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(root, "")
}

func show(path string) string {
	if path == "" {
		return "/"
	}
	return path
}
