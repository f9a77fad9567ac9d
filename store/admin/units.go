package admin

import (
	"context"
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
)

// unitSet is the units of a store whose blob is present (SPEC.md §8): where
// the chunks of virtual frames are.
type unitSet struct {
	units   []format.Frame
	byChunk map[format.ChunkID][]int // chunk -> units holding it
	drop    []digest.Digest          // descriptors that are invalid or whose blob is missing
}

// loadUnits reads the unit descriptors of us. present is every blob of the
// store with its size.
func loadUnits(ctx context.Context, us store.Units, present map[digest.Digest]int64) (*unitSet, error) {
	u := &unitSet{byChunk: map[format.ChunkID][]int{}}
	frames, invalid, err := index.ReadUnits(ctx, us)
	if err != nil {
		return nil, fmt.Errorf("reading units: %w", err)
	}
	u.drop = invalid
	for _, f := range frames {
		if n, ok := present[f.Digest.Digest()]; !ok || n != int64(f.StoredSize) {
			u.drop = append(u.drop, f.Digest.Digest())
			continue
		}
		i := len(u.units)
		u.units = append(u.units, f)
		for _, c := range f.Chunks {
			u.byChunk[c.ID] = append(u.byChunk[c.ID], i)
		}
	}
	return u, nil
}

// virtualNeed returns the chunks of the frames of g whose blob is missing
// (virtual frames) that no present frame of g holds, with their sizes.
func virtualNeed(g *graph, present map[digest.Digest]int64) map[format.ChunkID]uint32 {
	held := map[format.ChunkID]bool{}
	var virtual []*format.Frame
	for d, f := range g.Defs {
		if _, ok := present[d]; ok {
			for _, c := range f.Chunks {
				held[c.ID] = true
			}
		} else {
			virtual = append(virtual, f)
		}
	}
	need := map[format.ChunkID]uint32{}
	for _, f := range virtual {
		for _, c := range f.Chunks {
			if !held[c.ID] {
				need[c.ID] = c.Size
			}
		}
	}
	return need
}

// cover chooses units holding every chunk of need, greedily: units already
// chosen (keep) first, then those holding the most needed chunks. It
// returns the chosen units, which chunks each is chosen for, and the
// chunks no unit holds.
func (u *unitSet) cover(need map[format.ChunkID]uint32, keep map[int]bool) (chosen map[int][]format.ChunkRef, missing []format.ChunkID) {
	count := map[int]int{}
	for id := range need {
		for _, i := range u.byChunk[id] {
			count[i]++
		}
	}
	order := make([]int, 0, len(count))
	for i := range count {
		order = append(order, i)
	}
	sort.Slice(order, func(a, b int) bool {
		ia, ib := order[a], order[b]
		if keep[ia] != keep[ib] {
			return keep[ia]
		}
		if count[ia] != count[ib] {
			return count[ia] > count[ib]
		}
		return u.units[ia].Digest.String() < u.units[ib].Digest.String()
	})
	left := make(map[format.ChunkID]uint32, len(need))
	for id, n := range need {
		left[id] = n
	}
	chosen = map[int][]format.ChunkRef{}
	for _, i := range order {
		for _, c := range u.units[i].Chunks {
			if n, ok := left[c.ID]; ok {
				chosen[i] = append(chosen[i], format.ChunkRef{ID: c.ID, Size: n})
				delete(left, c.ID)
			}
		}
	}
	for id := range left {
		missing = append(missing, id)
	}
	sort.Slice(missing, func(a, b int) bool { return missing[a].String() < missing[b].String() })
	return chosen, missing
}
