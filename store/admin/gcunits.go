package admin

import (
	"context"
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
)

// unitMark is what GC decided about the store's units.
type unitMark struct {
	units  *unitSet
	chosen map[int][]format.ChunkRef // unit -> the live chunks it is kept for
	keep   map[digest.Digest]bool    // unit blobs to keep (besides live frames)
}

// markUnits chooses units for the chunks of the live virtual frames that no
// live frame holds; a chunk no unit holds is an error.
func markUnits(ctx context.Context, us store.Units, g *graph, present map[digest.Digest]int64) (*unitMark, error) {
	u, err := loadUnits(ctx, us, present)
	if err != nil {
		return nil, err
	}
	chosen, missing := u.cover(virtualNeed(g, present), nil)
	if len(missing) > 0 {
		return nil, fmt.Errorf("%d chunks of virtual frames are held by no frame or unit (chunk %s first; run check): %w",
			len(missing), missing[0], store.ErrNotFound)
	}
	m := &unitMark{units: u, chosen: chosen, keep: map[digest.Digest]bool{}}
	for i := range chosen {
		m.keep[u.units[i].Digest.Digest()] = true
	}
	return m, nil
}

// compact rewrites the live chunks of sparse units (live raw bytes under
// compactBelow of the unit's) into new units, then forgets the sparse ones
// (the sweep deletes them). Units that are live frames too are left alone.
func (m *unitMark) compact(ctx context.Context, st GCStore, g *graph, dryRun bool, rep *GCReport, progress func(GCProgress)) error {
	units := m.units.units
	var sparse []int
	for i, live := range m.chosen {
		if g.has(units[i].Digest.Digest()) {
			continue
		}
		var n uint64
		for _, c := range live {
			n += uint64(c.Size)
		}
		if float64(n) < compactBelow*float64(units[i].RawSize()) {
			sparse = append(sparse, i)
		}
	}
	if len(sparse) == 0 {
		return nil
	}
	sort.Slice(sparse, func(a, b int) bool { return units[sparse[a]].Digest.String() < units[sparse[b]].Digest.String() })
	for _, i := range sparse {
		delete(m.keep, units[i].Digest.Digest())
		rep.Compacted++
	}
	if dryRun {
		return nil
	}
	// Chunks another kept unit holds need no copy.
	held := map[format.ChunkID]bool{}
	for i := range m.chosen {
		if m.keep[units[i].Digest.Digest()] {
			for _, c := range units[i].Chunks {
				held[c.ID] = true
			}
		}
	}
	b := &unitBuilder{w: st, us: st, m: m, rep: rep}
	for k, i := range sparse {
		progress(GCProgress{Phase: "compact", Done: int64(k), Total: int64(len(sparse))})
		f := units[i]
		stored, err := st.ReadBlob(ctx, f.Digest.Digest(), int64(f.StoredSize))
		if err != nil {
			return fmt.Errorf("compacting unit %s: %w", f.Digest, err)
		}
		raw, err := pack.DecodeFrame(&f, stored, true)
		if err != nil {
			return fmt.Errorf("compacting unit %s: %w", f.Digest, err)
		}
		want := map[format.ChunkID]bool{}
		for _, c := range m.chosen[i] {
			want[c.ID] = true
		}
		var off uint64
		for _, c := range f.Chunks {
			data := raw[off : off+uint64(c.Size)]
			off += uint64(c.Size)
			if !want[c.ID] || held[c.ID] {
				continue
			}
			held[c.ID] = true
			if err := b.add(ctx, c, data); err != nil {
				return err
			}
		}
	}
	progress(GCProgress{Phase: "compact", Done: int64(len(sparse)), Total: int64(len(sparse))})
	return b.flush(ctx)
}

// unitBuilder packs chunks into new units of index.DefaultUnitSize.
type unitBuilder struct {
	w   store.Writer
	us  store.Units
	m   *unitMark
	rep *GCReport

	chunks []format.ChunkRef
	raw    []byte
}

func (b *unitBuilder) add(ctx context.Context, c format.ChunkRef, data []byte) error {
	if len(b.raw) > 0 && len(b.raw)+len(data) > index.DefaultUnitSize {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	b.chunks = append(b.chunks, c)
	b.raw = append(b.raw, data...)
	return nil
}

func (b *unitBuilder) flush(ctx context.Context) error {
	if len(b.chunks) == 0 {
		return nil
	}
	f, stored := index.MakeUnit(b.chunks, b.raw)
	if err := index.WriteUnit(ctx, b.w, b.us, f, stored); err != nil {
		return fmt.Errorf("compacting: %w", err)
	}
	b.m.keep[f.Digest.Digest()] = true
	b.rep.CompactedNew++
	b.rep.CompactedNewBytes += int64(len(stored))
	b.rep.LiveBlobs++
	b.rep.LiveBytes += int64(len(stored))
	b.chunks, b.raw = nil, nil
	return nil
}

// dropDescriptors deletes the descriptors of units whose blob goes (or is
// gone, or that do not decode), before the sweep deletes the blobs: a
// descriptor never outlives its blob for long, and a blob never loses its
// descriptor while it is kept.
func (m *unitMark) dropDescriptors(ctx context.Context, us store.Units, g *graph, dryRun bool, rep *GCReport) error {
	drop := append([]digest.Digest(nil), m.units.drop...)
	for _, f := range m.units.units {
		d := f.Digest.Digest()
		if m.keep[d] || g.has(d) {
			rep.Units++
		} else {
			drop = append(drop, d)
		}
	}
	rep.Units += rep.CompactedNew
	for _, d := range drop {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !dryRun {
			if err := us.DeleteUnit(ctx, d); err != nil {
				return fmt.Errorf("deleting unit %s: %w", d, err)
			}
		}
		rep.UnitsDeleted++
	}
	return nil
}
