package exporter

import (
	"context"
	"fmt"
	"path"
	"sync/atomic"

	"github.com/moby/buildkit/cache"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/snapshot"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/util/progress"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
)

// mountedTree is one platform's result, mounted read-only and walked.
type mountedTree struct {
	dir     string // "" for an empty result
	root    *writer.Node
	unmount func() error
	files   map[string]fileRecord // regular files by slash path, for the cache
	stats   CacheStats
	cache   *SnapshotFileCache
	tree    TreeStats
	got     map[*writer.Node][]format.Extent // extents the writer reported
}

// fileRecord ties a regular file's node to its cache key.
type fileRecord struct {
	key  fileKey
	node *writer.Node
}

// emptyRoot is the tree of an empty result (FROM scratch with nothing
// added): a root directory with fixed metadata, so it is reproducible.
func emptyRoot() *writer.Node {
	return &writer.Node{Entry: format.Entry{Type: format.TypeDir, Mode: 0o755}}
}

// openTree mounts ref read-only (as the local exporter does), walks it and
// maps the daemon's user namespace IDs back to container IDs. Files the
// cache knows get their extents, so the writer does not read them.
func (i *instance) openTree(ctx context.Context, ref cache.ImmutableRef, sessionID, platformID string) (_ *mountedTree, err error) {
	t := &mountedTree{cache: i.exp.opt.Cache, files: map[string]fileRecord{}, unmount: func() error { return nil }}
	if ref == nil {
		t.root = emptyRoot()
		return t, nil
	}
	m, err := ref.Mount(ctx, true, session.NewGroup(sessionID))
	if err != nil {
		return nil, fmt.Errorf("oci2 exporter: mounting result: %w", err)
	}
	lm := snapshot.LocalMounter(m)
	t.dir, err = lm.Mount()
	if err != nil {
		return nil, fmt.Errorf("oci2 exporter: mounting result: %w", err)
	}
	t.unmount = lm.Unmount
	defer func() {
		if err != nil {
			_ = t.unmount()
		}
	}()

	var warnings atomic.Int64
	dirOpts := writer.DirOptions{Warn: func(p string, err error) {
		warnings.Add(1)
		bklog.G(ctx).Warnf("oci2 exporter: %s: %v", p, err)
	}}
	if t.root, err = i.walkLayers(ctx, ref, sessionID, platformID, t, dirOpts); err != nil {
		return nil, err
	}
	if t.root == nil {
		done := progress.OneOff(ctx, "walking "+platformID)
		t.root, err = writer.FromDir(ctx, t.dir, dirOpts)
		if err := done(err); err != nil {
			return nil, fmt.Errorf("oci2 exporter: walking result: %w", err)
		}
		t.tree.Walked = countNodes(t.root)
	}
	if n := warnings.Load(); n > 0 {
		progressLog(ctx, fmt.Sprintf("%d entries skipped or incomplete (see the daemon log)", n))
	}
	if idmap := m.IdentityMapping(); idmap != nil {
		mapIDs(t.root, idmap)
	}
	if t.cache != nil {
		t.lookup(ctx)
	}
	return t, nil
}

// walkLayers gets the tree of ref from the tree cache and the diffs of
// the layers above what it knows (see TreeCache). It returns nil, and no
// error, when the chain cannot be read that way: the caller walks the
// whole mounted result.
func (i *instance) walkLayers(ctx context.Context, ref cache.ImmutableRef, sessionID, platformID string,
	t *mountedTree, opts writer.DirOptions) (*writer.Node, error) {
	c := i.exp.opt.Trees
	if c == nil {
		return nil, nil
	}
	done := progress.OneOff(ctx, "walking "+platformID+" (layer diffs)")
	root, err := c.chainTree(ctx, ref, t.dir, session.NewGroup(sessionID), &t.tree, opts)
	if err == nil {
		var st unix.Stat_t
		if err = unix.Lstat(t.dir, &st); err == nil {
			rebind(root, t.dir, st.Dev, "")
		}
	}
	if ctx.Err() != nil {
		return nil, done(context.Cause(ctx))
	}
	_ = done(nil)
	if err != nil {
		// Not an error of the export: the whole result is walked instead.
		t.tree.FullWalk = err.Error()
		if !isNoDiff(err) {
			bklog.G(ctx).Warnf("oci2 exporter: layer diffs of %s: %v (walking the whole result)", platformID, err)
		}
		return nil, nil
	}
	progressLog(ctx, fmt.Sprintf("%s: %d of %d layers from earlier exports, %d entries read",
		platformID, t.tree.LayersCached, t.tree.Layers, t.tree.Walked))
	return root, nil
}

// written records the extents the writer gives a file (writer.Options.Extents).
func (t *mountedTree) written(n *writer.Node, ext []format.Extent) {
	if t.got == nil {
		t.got = make(map[*writer.Node][]format.Extent, len(t.files))
	}
	t.got[n] = ext
}

// fillExtents gives the files the writer chunked their extents, so the
// files cache learns them without reading the image back. Members of a
// hardlink group get the extents of the member that holds the data.
func (t *mountedTree) fillExtents() {
	groups := map[uint64][]format.Extent{}
	for n, ext := range t.got {
		if n.Inode != 0 {
			groups[n.Inode] = ext
		}
	}
	for _, r := range t.files {
		n := r.node
		if n.Extents != nil {
			continue
		}
		if ext, ok := t.got[n]; ok {
			n.Extents = ext
		} else if ext, ok := groups[n.Inode]; ok && n.Inode != 0 {
			n.Extents = ext
		}
	}
}

// Close unmounts the result.
func (t *mountedTree) Close() error { return t.unmount() }

// mapIDs applies the daemon's identity mapping as the local exporter does:
// host IDs become container IDs; an entry whose IDs cannot be mapped is
// left out (with its subtree), as fsutil's MapResultExclude does.
func mapIDs(n *writer.Node, idmap *user.IdentityMapping) {
	if uid, gid, err := idmap.ToContainer(int(n.UID), int(n.GID)); err == nil {
		n.UID, n.GID = uint32(uid), uint32(gid)
	}
	kept := n.Children[:0]
	for _, c := range n.Children {
		if c.Type != format.TypeHardlink {
			if _, _, err := idmap.ToContainer(int(c.UID), int(c.GID)); err != nil {
				continue
			}
		}
		mapIDs(c, idmap)
		kept = append(kept, c)
	}
	n.Children = kept
}

// walkFiles calls fn for every regular file node with its slash path.
func walkFiles(n *writer.Node, p string, fn func(p string, n *writer.Node)) {
	for _, c := range n.Children {
		cp := path.Join(p, c.Name)
		switch c.Type {
		case format.TypeDir:
			walkFiles(c, cp, fn)
		case format.TypeReg:
			fn(cp, c)
		}
	}
}
