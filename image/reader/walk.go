package reader

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/oci2/oci2/format"
)

// treeCacheEntries bounds the decoded trees a walk keeps: shared subtrees
// (identical directories) are decoded once while they stay in the cache.
const treeCacheEntries = 4096

// rootWrapperName is the single entry of the root wrapper (SPEC.md §4.3).
const rootWrapperName = "rootfs"

type walker struct {
	ctx       context.Context
	r         *ChunkReader
	limits    Limits
	pre, post WalkFunc

	entries int64
	bytes   int64
	root    format.ChunkID          // the real root tree (hardlink targets)
	names   []string                // components of the current directory
	onPath  map[format.ChunkID]bool // trees on the current path (cycle guard)
	trees   map[format.ChunkID]*format.Tree
}

func newWalker(ctx context.Context, r *ChunkReader, limits Limits, pre, post WalkFunc) *walker {
	if limits.MaxEntries <= 0 {
		limits.MaxEntries = DefaultLimits.MaxEntries
	}
	if limits.MaxDepth <= 0 {
		limits.MaxDepth = DefaultLimits.MaxDepth
	}
	if limits.MaxBytes <= 0 {
		limits.MaxBytes = DefaultLimits.MaxBytes
	}
	return &walker{ctx: ctx, r: r, limits: limits, pre: pre, post: post,
		onPath: make(map[format.ChunkID]bool), trees: make(map[format.ChunkID]*format.Tree)}
}

// displayPath is how errors name an entry: "/" for the root.
func displayPath(p string) string { return "/" + p }

func (w *walker) run(wrapper format.ChunkID) error {
	t, err := w.tree(wrapper)
	if err != nil {
		return fmt.Errorf("root wrapper: %w", err)
	}
	if len(t.Entries) != 1 || t.Entries[0].Type != format.TypeDir || t.Entries[0].Name != rootWrapperName {
		return fmt.Errorf("%w: root wrapper %s: want exactly one directory entry named %q",
			ErrInvalidImage, wrapper, rootWrapperName)
	}
	e := &t.Entries[0]
	w.root = e.Tree
	w.onPath[wrapper] = true
	if err := w.count(""); err != nil {
		return err
	}
	return w.dir("", e)
}

// dir calls pre for the directory entry e at p, walks its tree and calls post.
func (w *walker) dir(p string, e *format.Entry) error {
	if err := w.pre(p, e); err != nil {
		if errors.Is(err, SkipDir) {
			return nil
		}
		return err
	}
	if w.onPath[e.Tree] {
		return fmt.Errorf("%w: %q: tree %s contains itself", ErrInvalidImage, displayPath(p), e.Tree)
	}
	t, err := w.tree(e.Tree)
	if err != nil {
		return fmt.Errorf("%q: %w", displayPath(p), err)
	}
	w.onPath[e.Tree] = true
	for i := range t.Entries {
		c := &t.Entries[i]
		cp := c.Name
		if p != "" {
			cp = p + "/" + c.Name
		}
		if err := w.entry(cp, c); err != nil {
			return err
		}
	}
	delete(w.onPath, e.Tree)
	if w.post != nil {
		return w.post(p, e)
	}
	return nil
}

func (w *walker) entry(p string, e *format.Entry) error {
	if err := w.count(p); err != nil {
		return err
	}
	if len(w.names) >= w.limits.MaxDepth {
		return fmt.Errorf("%w: %q: deeper than %d levels", ErrLimit, displayPath(p), w.limits.MaxDepth)
	}
	if strings.ContainsRune(e.Name, '/') || e.Name == "" || e.Name == "." || e.Name == ".." {
		return fmt.Errorf("%w: %q: invalid name", ErrInvalidImage, displayPath(p))
	}
	switch e.Type {
	case format.TypeDir:
		w.names = append(w.names, e.Name)
		err := w.dir(p, e)
		w.names = w.names[:len(w.names)-1]
		return err
	case format.TypeReg:
		if e.Size > uint64(w.limits.MaxBytes-w.bytes) {
			return fmt.Errorf("%w: %q: more than %d bytes of file content", ErrLimit, displayPath(p), w.limits.MaxBytes)
		}
		w.bytes += int64(e.Size)
	case format.TypeHardlink:
		if err := w.checkHardlink(p, e.Target); err != nil {
			return fmt.Errorf("%w: %q: %w", ErrInvalidImage, displayPath(p), err)
		}
	}
	if err := w.pre(p, e); err != nil && !errors.Is(err, SkipDir) {
		return err
	}
	return nil
}

func (w *walker) count(p string) error {
	w.entries++
	if w.entries > w.limits.MaxEntries {
		return fmt.Errorf("%w: %q: more than %d entries", ErrLimit, displayPath(p), w.limits.MaxEntries)
	}
	if w.entries&1023 == 0 {
		if err := w.ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// tree returns a decoded tree, cached for shared subtrees.
func (w *walker) tree(id format.ChunkID) (*format.Tree, error) {
	if t, ok := w.trees[id]; ok {
		return t, nil
	}
	if err := w.ctx.Err(); err != nil {
		return nil, err
	}
	t, err := w.r.Tree(w.ctx, id)
	if err != nil {
		return nil, err
	}
	if len(w.trees) >= treeCacheEntries {
		clear(w.trees)
	}
	w.trees[id] = t
	return t, nil
}

// checkHardlink checks that target names a regular file preceding the entry
// at p in canonical order, resolving it through the trees (no symlink is
// ever followed: every component but the last must be a directory).
func (w *walker) checkHardlink(p, target string) error {
	comps := strings.Split(target, "/")
	for _, c := range comps {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("hardlink target %q: invalid component %q", target, c)
		}
	}
	cur := append(append([]string(nil), w.names...), p[strings.LastIndexByte(p, '/')+1:])
	if compareComponents(comps, cur) >= 0 {
		return fmt.Errorf("hardlink target %q does not precede %q in canonical order", displayPath(target), displayPath(p))
	}
	id := w.root
	for i, c := range comps {
		t, err := w.tree(id)
		if err != nil {
			return fmt.Errorf("hardlink target %q: %w", target, err)
		}
		j := sort.Search(len(t.Entries), func(k int) bool { return t.Entries[k].Name >= c })
		if j == len(t.Entries) || t.Entries[j].Name != c {
			return fmt.Errorf("hardlink target %q does not exist", displayPath(target))
		}
		e := &t.Entries[j]
		if i == len(comps)-1 {
			if e.Type != format.TypeReg {
				return fmt.Errorf("hardlink target %q is not a regular file", displayPath(target))
			}
			return nil
		}
		if e.Type != format.TypeDir {
			return fmt.Errorf("hardlink target %q: %q is not a directory",
				displayPath(target), displayPath(strings.Join(comps[:i+1], "/")))
		}
		id = e.Tree
	}
	return nil
}

// compareComponents orders paths as the canonical walk visits them: by
// component bytes, a directory before its contents.
func compareComponents(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}
