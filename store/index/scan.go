package index

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/image/walk"
	"github.com/oci2/oci2/store"
)

// Refresh scans the refs of the store again, indexing the frames of images
// stored since the last scan (by this or another process). Blobs are
// immutable, so manifests and pack indexes already scanned are not read
// again; only frames found missing before are looked up again.
//
// The index only speeds up writes: a ref that cannot be read (missing or
// corrupt blobs) is skipped and retried on the next Refresh. Only failures to
// list refs and cancellation are returned.
func (x *Index) Refresh(ctx context.Context) error {
	x.scanMu.Lock()
	defer x.scanMu.Unlock()
	x.mu.Lock()
	for key, f := range x.dropped {
		x.pending[key] = f
	}
	clear(x.dropped)
	for d := range x.unitsGone {
		delete(x.unitsDone, d)
	}
	clear(x.unitsGone)
	x.mu.Unlock()
	if err := x.loadNewTables(); err != nil {
		return fmt.Errorf("indexing store: %w", err)
	}
	if err := x.resetIfCorrupt(); err != nil {
		return fmt.Errorf("indexing store: %w", err)
	}
	if err := x.scanUnits(ctx); err != nil {
		return fmt.Errorf("indexing store: %w", err)
	}
	refs, err := x.st.ListRefs(ctx)
	if err != nil {
		return fmt.Errorf("indexing store: %w", err)
	}
	for _, r := range refs {
		if err := x.scanRef(ctx, r.Descriptor); err != nil && ctx.Err() != nil {
			return fmt.Errorf("indexing store: %w", ctx.Err())
		}
	}
	x.mu.Lock()
	pending := make(map[format.ChunkID]format.Frame, len(x.pending)+len(x.recheck))
	for _, m := range []map[format.ChunkID]format.Frame{x.recheck, x.pending} {
		for k, f := range m {
			pending[k] = f
		}
	}
	x.mu.Unlock()
	for key, f := range pending {
		if err := x.makeRoom(ctx, len(f.Chunks)+1); err != nil {
			return fmt.Errorf("indexing store: %w", err)
		}
		ok, err := x.scanStored(ctx, f)
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("indexing store: %w", ctx.Err())
		}
		if ok {
			x.addStored(key, f, false)
		}
	}
	x.mu.Lock()
	x.warm.Store(len(x.chunks) > 0 || x.tableChunks() > 0)
	x.mu.Unlock()
	if err := x.save(ctx); err != nil {
		return fmt.Errorf("indexing store: %w", err)
	}
	return nil
}

// scanUnits indexes the unit descriptors not read yet whose blob is present.
// A descriptor whose blob is missing is looked at again by the next scan; one
// that does not decode is ignored (gc removes it).
func (x *Index) scanUnits(ctx context.Context) error {
	if x.units == nil {
		return nil
	}
	ds, err := x.units.ListUnits(ctx)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if x.unitsDone[d] {
			continue
		}
		x.count(func(c *scanCounters) *atomic.Int64 { return &c.units })
		b, err := x.units.ReadUnit(ctx, d)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		f, err := DecodeUnit(d, b)
		if err != nil {
			x.unitsDone[d] = true
			continue
		}
		if err := x.makeRoom(ctx, len(f.Chunks)); err != nil {
			return err
		}
		ok, err := x.scanStored(ctx, f)
		if err != nil {
			return err
		}
		if ok {
			x.mu.Lock()
			x.addBlobLocked(f, true)
			x.newUnits[d] = true
			x.mu.Unlock()
			x.unitsDone[d] = true
		}
	}
	return nil
}

// scanRef scans the image graph under desc. Manifests are marked done once
// their pack indexes are read, indexes once everything under them was (an
// index is read again while any of it is missing). Not every failure stops
// the scan: the first is returned.
func (x *Index) scanRef(ctx context.Context, desc ocispec.Descriptor) error {
	var first error
	var indexes []digest.Digest
	w := walk.Walker{
		Fetch: func(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
			x.count(func(c *scanCounters) *atomic.Int64 { return &c.manifests })
			return walk.FromStore(x.st)(ctx, d)
		},
		Skip: func(d ocispec.Descriptor) bool { return x.done[d.Digest] },
		Visit: func(ctx context.Context, n *walk.Node) error {
			switch n.Kind {
			case walk.Index:
				indexes = append(indexes, n.Desc.Digest)
			case walk.Manifest:
				if err := x.visitManifest(ctx, n.Manifest); err != nil {
					return err
				}
				x.markDone(n.Desc.Digest)
			}
			return nil // other blobs do not lead to pack indexes
		},
		OnError: func(_ ocispec.Descriptor, err error) error {
			if first == nil {
				first = err
			}
			return nil
		},
	}
	if err := w.Walk(ctx, desc); err != nil {
		return err
	}
	if first == nil {
		for _, d := range indexes {
			x.markDone(d)
		}
	}
	return first
}

func (x *Index) visitManifest(ctx context.Context, m *ocispec.Manifest) error {
	var first error
	for _, l := range m.Layers {
		switch l.MediaType {
		case format.MediaTypePackIndex:
			if err := x.visitPackIndex(ctx, l.Digest); err != nil && first == nil {
				first = err
			}
		case format.MediaTypeTreePack, format.MediaTypeDataPack:
			if idx, ok := l.Annotations[format.AnnotationPackIndex]; ok {
				if id, err := digest.Parse(idx); err == nil {
					x.RecordPack(id, l.Digest)
				}
			}
		}
	}
	return first
}

func (x *Index) visitPackIndex(ctx context.Context, d digest.Digest) error {
	if x.done[d] {
		return nil
	}
	x.count(func(c *scanCounters) *atomic.Int64 { return &c.packIndexes })
	b, err := x.st.ReadBlob(ctx, d, format.MaxPackIndexSize)
	if err != nil {
		return err
	}
	pi, err := format.DecodePackIndex(b)
	if err != nil {
		return fmt.Errorf("pack index %s: %w", d, err)
	}
	for _, f := range pi.Frames {
		key := pack.FrameKey(f.Chunks)
		x.mu.Lock()
		_, kind, known := x.frameLocked(key)
		x.mu.Unlock()
		if kind == kindStored || kind == kindPending {
			continue
		}
		if err := x.makeRoom(ctx, len(f.Chunks)+1); err != nil {
			return err
		}
		ok, err := x.scanStored(ctx, f)
		if err != nil {
			return err
		}
		if ok {
			x.addStored(key, f, false)
		} else if !known {
			x.mu.Lock()
			x.pending[key] = f
			x.pendingChunks += len(f.Chunks)
			x.mu.Unlock()
		}
	}
	x.markDone(d)
	return nil
}

// markDone records that blob d was scanned whole (under scanMu).
func (x *Index) markDone(d digest.Digest) {
	x.done[d] = true
	x.mu.Lock()
	x.newDone[d] = true
	x.mu.Unlock()
}

// stored reports whether f's blob is in the store with the right size.
func (x *Index) stored(ctx context.Context, f format.Frame) (bool, error) {
	info, err := x.st.Stat(ctx, f.Digest.Digest())
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return info.Size == int64(f.StoredSize), nil
}

// scanStored is stored for a scan, which counts it.
func (x *Index) scanStored(ctx context.Context, f format.Frame) (bool, error) {
	x.count(func(c *scanCounters) *atomic.Int64 { return &c.frames })
	return x.stored(ctx, f)
}
