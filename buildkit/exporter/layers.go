package exporter

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/moby/buildkit/cache"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/snapshot"
	"github.com/moby/buildkit/util/overlay"

	"github.com/oci2/oci2/image/writer"
)

// TreeCache remembers the walked trees of layer chains exported before, so
// that an export walks only the layers above the longest chain it knows,
// applying their overlayfs upper directories (each layer's own diff) to a
// copy of that chain's tree; the files cache then gives the files below
// their extents. Chains the diff cannot describe (merges, diffs, other
// snapshotters, redirect_dir) are walked whole. Trees are kept in memory
// by the cache record ID of the chain's top layer, bounded by their total
// number of entries. Design: SPEC.md §8.3.
type TreeCache struct {
	mu    sync.Mutex
	m     map[string]*cachedTree
	tick  uint64
	nodes int64
	max   int64
}

type cachedTree struct {
	root  *writer.Node
	nodes int64
	used  uint64
}

// NewTreeCache returns a cache holding trees of at most maxNodes entries in
// all (0: 512Ki entries, about 200 MiB at some 400 bytes an entry; a
// 440 MB root filesystem has 13,000).
func NewTreeCache(maxNodes int64) *TreeCache {
	if maxNodes <= 0 {
		maxNodes = 512 << 10
	}
	return &TreeCache{m: map[string]*cachedTree{}, max: maxNodes}
}

// get returns a copy of the tree of chain top id.
func (c *TreeCache) get(id string) *writer.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[id]
	if !ok {
		return nil
	}
	c.tick++
	t.used = c.tick
	return cloneTree(t.root)
}

// put stores a copy of root as the tree of chain top id, dropping the
// least recently used trees beyond the bound.
func (c *TreeCache) put(id string, root *writer.Node) {
	n := countNodes(root)
	if n > c.max {
		return
	}
	root = cloneTree(root)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[id]; ok {
		c.nodes -= old.nodes
	}
	c.tick++
	c.m[id] = &cachedTree{root: root, nodes: n, used: c.tick}
	c.nodes += n
	for c.nodes > c.max {
		var oldest string
		for k, t := range c.m {
			if oldest == "" || t.used < c.m[oldest].used {
				oldest = k
			}
		}
		c.nodes -= c.m[oldest].nodes
		delete(c.m, oldest)
	}
}

// TreeStats say how an export got its tree.
type TreeStats struct {
	Layers       int    `json:"layers"`        // layers of the result
	LayersCached int    `json:"layers_cached"` // bottom layers whose tree came from earlier exports
	Walked       int64  `json:"walked"`        // entries read from the filesystem
	FullWalk     string `json:"full_walk,omitempty"`
}

// chainTree builds the tree of ref from the cache and the upper
// directories of the layers above the longest cached chain, caching the
// tree of every chain it computes. ref is mounted at dir, which serves as
// the view of the top layer.
func (c *TreeCache) chainTree(ctx context.Context, ref cache.ImmutableRef, dir string, s session.Group, ts *TreeStats, opts writer.DirOptions) (*writer.Node, error) {
	chain := ref.LayerChain()
	defer chain.Release(context.WithoutCancel(ctx))
	ts.Layers = len(chain)
	if len(chain) == 0 || chain[len(chain)-1].ID() != ref.ID() {
		return nil, fmt.Errorf("%w: the result is not a plain layer chain", errNoDiff)
	}
	k := len(chain) - 1
	var root *writer.Node
	for ; k >= 0; k-- {
		if root = c.get(chain[k].ID()); root != nil {
			break
		}
	}
	ts.LayersCached = k + 1
	var lower []mount.Mount
	if k >= 0 && k < len(chain)-1 { // the lower of the first layer to apply
		ms, release, err := mounts(ctx, chain[k], s)
		if err != nil {
			return nil, err
		}
		defer release()
		lower = ms
	}
	for j := k + 1; j < len(chain); j++ {
		upper, release, err := mounts(ctx, chain[j], s)
		if err != nil {
			return nil, err
		}
		defer release()
		upperdir, err := overlay.GetUpperdir(lower, upper)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNoDiff, err)
		}
		view := ""
		if j == len(chain)-1 {
			view = dir
		}
		if root, err = applyMounted(ctx, chain[j], view, s, root, upperdir, opts, ts); err != nil {
			return nil, err
		}
		c.put(chain[j].ID(), root)
		lower = upper
	}
	return root, nil
}

// applyMounted applies layer's upper directory to root (nil: the bottom
// layer, walked whole), reading entries from the chain up to layer mounted
// at dir ("": mounted here).
func applyMounted(ctx context.Context, layer cache.ImmutableRef, dir string, s session.Group, root *writer.Node,
	upperdir string, opts writer.DirOptions, ts *TreeStats) (_ *writer.Node, err error) {
	if dir == "" {
		m, err := layer.Mount(ctx, true, s)
		if err != nil {
			return nil, fmt.Errorf("mounting layer: %w", err)
		}
		lm := snapshot.LocalMounter(m)
		if dir, err = lm.Mount(); err != nil {
			return nil, fmt.Errorf("mounting layer: %w", err)
		}
		defer func() {
			if uerr := lm.Unmount(); err == nil && uerr != nil {
				err = fmt.Errorf("unmounting layer: %w", uerr)
			}
		}()
	}
	view, err := writer.NewWalker(dir, opts)
	if err != nil {
		return nil, err
	}
	if root == nil {
		root, err = view.Tree(ctx, "")
		ts.Walked += countNodes(root)
		return root, err
	}
	n, err := applyLayer(ctx, root, upperdir, view)
	ts.Walked += n
	return root, err
}

// mounts returns the mount specs of ref's whole chain (nothing is mounted).
func mounts(ctx context.Context, ref cache.ImmutableRef, s session.Group) ([]mount.Mount, func(), error) {
	m, err := ref.Mount(ctx, true, s)
	if err != nil {
		return nil, nil, fmt.Errorf("mounting layer: %w", err)
	}
	ms, release, err := m.Mount()
	if err != nil {
		return nil, nil, fmt.Errorf("mounting layer: %w", err)
	}
	return ms, func() { _ = release() }, nil
}

// isNoDiff tells a chain the diff cannot describe from a real failure.
func isNoDiff(err error) bool { return errors.Is(err, errNoDiff) }
