package exporter

import (
	"context"
	"slices"
	"sync"

	"github.com/moby/buildkit/util/bklog"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/framesource"
	"github.com/oci2/oci2/store/index"
)

// SnapshotFileCache remembers the extents (chunk IDs) of regular files
// exported before, so that an export reads and chunks only the files that
// changed.
// It trusts BuildKit's immutable snapshots, on two levels keyed by the
// file's path in the image: identity (inode, size, mtime, ctime: the file
// is not opened) and content (the last extents of its path and size, given
// to the writer as a Candidate and verified against the file's bytes).
// Design and trust rules: SPEC.md §8.3. It is per worker, saved with the
// daemon's state, and bounded (the entries least recently used go first).
type SnapshotFileCache struct {
	mu sync.Mutex
	m  map[fileKey]cacheEntry
	// latest is level 2: the key in m of the entry stored last for a path
	// and size. It is derived from m (rebuilt on load and after a trim).
	latest map[pathSize]fileKey
	gen    uint64
	max    int
	dirty  bool
}

type pathSize struct {
	path string
	size int64
}

type fileKey struct {
	path         string
	ino          uint64
	size         int64
	mtime, ctime int64 // ns
}

type cacheEntry struct {
	extents []format.Extent
	gen     uint64
}

// CacheStats describe the cache's effect on one export.
type CacheStats struct {
	Files    int64 `json:"files"`     // regular files, non-empty
	Hits     int64 `json:"hits"`      // files whose extents came from the identity key
	HitBytes int64 `json:"hit_bytes"` // their logical bytes, not read
	// Verified files missed the identity key but their content matched
	// the extents stored for their path and size (read, not chunked).
	Verified      int64 `json:"verified"`
	VerifiedBytes int64 `json:"verified_bytes"` // their logical bytes
}

// NewSnapshotFileCache returns an empty cache holding at most maxEntries
// files (0: 1 million).
func NewSnapshotFileCache(maxEntries int) *SnapshotFileCache {
	if maxEntries <= 0 {
		maxEntries = 1 << 20
	}
	return &SnapshotFileCache{m: map[fileKey]cacheEntry{}, latest: map[pathSize]fileKey{}, max: maxEntries}
}

// Len returns the number of cached files.
func (c *SnapshotFileCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *SnapshotFileCache) get(k fileKey) ([]format.Extent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil, false
	}
	e.gen = c.gen
	c.m[k] = e
	return e.extents, true
}

// candidate returns the extents stored last for path and size (level 2),
// to be verified against the file's bytes before use.
func (c *SnapshotFileCache) candidate(path string, size int64) ([]format.Extent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.latest[pathSize{path, size}]
	if !ok {
		return nil, false
	}
	e, ok := c.m[k]
	if !ok {
		return nil, false
	}
	return e.extents, true
}

// reindex rebuilds latest from m: for every path and size, the entry of
// the newest generation (ties, which one export cannot make, go to the
// newest ctime, then the highest inode, so the choice is deterministic).
func (c *SnapshotFileCache) reindex() {
	c.latest = make(map[pathSize]fileKey, len(c.m))
	for k, e := range c.m {
		ps := pathSize{k.path, k.size}
		if o, ok := c.latest[ps]; ok && !newer(k, e.gen, o, c.m[o].gen) {
			continue
		}
		c.latest[ps] = k
	}
}

func newer(a fileKey, agen uint64, b fileKey, bgen uint64) bool {
	if agen != bgen {
		return agen > bgen
	}
	if a.ctime != b.ctime {
		return a.ctime > b.ctime
	}
	if a.ino != b.ino {
		return a.ino > b.ino
	}
	return a.mtime > b.mtime
}

// add records entries as used by a new export, then trims the cache.
func (c *SnapshotFileCache) add(entries map[fileKey][]format.Extent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.dirty = true
	for k, ext := range entries {
		c.m[k] = cacheEntry{extents: ext, gen: c.gen}
		c.latest[pathSize{k.path, k.size}] = k
	}
	if len(c.m) <= c.max {
		return
	}
	// Drop the least recently used generations until a quarter is free.
	gens := make([]uint64, 0, len(c.m))
	for _, e := range c.m {
		gens = append(gens, e.gen)
	}
	slices.Sort(gens)
	cut := gens[len(gens)-c.max*3/4]
	for k, e := range c.m {
		if e.gen < cut {
			delete(c.m, k)
		}
	}
	c.reindex()
}

// lookup gives every cached regular file its extents. The identity key
// comes from the walk (writer.SourceFile), so an identity hit is not read
// or stat'ed again. Snapshots are immutable once committed, so the
// racy-git rule of the writer's own files cache (distrust a file changed
// in the tick it was read) does not apply: nothing writes to a mounted
// result. A file that misses but has extents stored for its path and
// size gets them as its Candidate: the writer checks them against the
// file's bytes while it writes (writer.Node.Candidate), in parallel with
// packing the files before it.
func (t *mountedTree) lookup(ctx context.Context) {
	walkFiles(t.root, "", func(p string, n *writer.Node) {
		if n.Size == 0 || n.Extents != nil {
			return
		}
		t.stats.Files++
		sf, ok := n.Content.(*writer.SourceFile)
		if !ok || uint64(sf.Size) != n.Size {
			return
		}
		k := fileKey{path: p, ino: sf.Ino, size: sf.Size, mtime: sf.MtimeNs, ctime: sf.CtimeNs}
		t.files[p] = fileRecord{key: k, node: n}
		if ext, ok := t.cache.get(k); ok && format.ExtentsSize(ext) == n.Size {
			n.Extents = slices.Clone(ext)
			t.stats.Hits++
			t.stats.HitBytes += int64(n.Size)
			return
		}
		if ext, ok := t.cache.candidate(p, sf.Size); ok && format.ExtentsSize(ext) == n.Size {
			n.Candidate = slices.Clone(ext)
		}
	})
}

// remember stores the extents of the files just written. They come from
// the nodes when the writer filled them in, else from the written trees
// (their virtual frames located through idx, the export's index).
func (t *mountedTree) remember(ctx context.Context, st framesource.Store, img *reader.Image, idx *index.Index) CacheStats {
	if t.cache == nil || len(t.files) == 0 {
		return t.stats
	}
	entries := make(map[fileKey][]format.Extent, len(t.files))
	missing := 0
	for _, r := range t.files {
		if r.node.Extents != nil && format.ExtentsSize(r.node.Extents) == r.node.Size {
			entries[r.key] = r.node.Extents
		} else {
			missing++
		}
	}
	if missing > 0 {
		if err := t.fromImage(ctx, st, img, idx, entries); err != nil {
			bklog.G(ctx).Warnf("oci2 exporter: files cache not updated: %v", err)
			return t.stats
		}
	}
	t.cache.add(entries)
	return t.stats
}

// fromImage reads the extents of t.files from the image's trees.
func (t *mountedTree) fromImage(ctx context.Context, st framesource.Store, img *reader.Image, idx *index.Index, entries map[fileKey][]format.Extent) error {
	cr := reader.NewChunkReader(img, framesource.New(st, idx))
	// Members of a hardlink group after the first are hardlink entries
	// naming the first: they get its extents.
	regular := map[string][]format.Extent{}
	return reader.Walk(ctx, cr, img.Root, reader.DefaultLimits, func(p string, e *format.Entry) error {
		var ext []format.Extent
		switch e.Type {
		case format.TypeReg:
			ext = e.Extents
			if r, ok := t.files[p]; ok && r.node.Inode != 0 {
				regular[p] = ext
			}
		case format.TypeHardlink:
			ext = regular[e.Target]
		default:
			return nil
		}
		if r, ok := t.files[p]; ok && ext != nil && format.ExtentsSize(ext) == r.node.Size {
			entries[r.key] = slices.Clone(ext)
		}
		return nil
	})
}
