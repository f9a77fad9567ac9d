package index

import (
	"context"

	"github.com/oci2/oci2/format"
)

// checkHolders stats the blobs holding chunks (each once) and keeps them
// (see keepBlobs); missing ones are dropped. It reports whether every chunk
// is still held.
func (x *Index) checkHolders(ctx context.Context, chunks []format.ChunkRef) (bool, error) {
	for {
		x.mu.Lock()
		var blobs []int32
		seen := map[int32]bool{}
		for _, c := range chunks {
			loc, ok := x.locateLocked(c.ID)
			if !ok {
				x.mu.Unlock()
				return false, nil
			}
			if !seen[loc.blob] {
				seen[loc.blob] = true
				blobs = append(blobs, loc.blob)
			}
		}
		fs := make([]format.Frame, len(blobs))
		for i, b := range blobs {
			fs[i] = x.blobs[b].f
		}
		x.mu.Unlock()
		missing := false
		for i, b := range blobs {
			ok, err := x.stored(ctx, fs[i])
			if err != nil {
				return false, err
			}
			if !ok {
				x.dropBlob(b)
				missing = true
			}
		}
		if !missing {
			// A virtual frame relies on them.
			kept, err := x.keepBlobs(ctx, blobs)
			if err != nil || kept {
				return kept, err
			}
			continue
		}
		// Chunks of a dropped blob may be held by another: look again.
	}
}

// dropBlob forgets blob n, found missing: its chunks are located again in
// other blobs (units first; a rare, linear pass), and the frames stored as
// it are dropped until the next Refresh.
func (x *Index) dropBlob(n int32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	b := &x.blobs[n]
	if b.gone {
		return
	}
	b.gone = true
	x.gone[b.f.Digest] = true
	delete(x.byBlob, b.f.Digest)
	if b.unit {
		x.unitsGone[b.f.Digest.Digest()] = true
	}
	lost := map[format.ChunkID]bool{}
	for _, c := range b.f.Chunks {
		if loc, ok := x.chunks[c.ID]; ok && loc.blob == n {
			delete(x.chunks, c.ID)
			lost[c.ID] = true
		}
	}
	for pass := 0; pass < 2 && len(lost) > 0; pass++ {
		for m := range x.blobs {
			o := &x.blobs[m]
			if o.gone || o.unit != (pass == 0) {
				continue
			}
			var off uint32
			for _, c := range o.f.Chunks {
				if lost[c.ID] {
					x.chunks[c.ID] = chunkLoc{blob: int32(m), offset: off, size: c.Size}
					delete(lost, c.ID)
				}
				off += c.Size
			}
		}
	}
	for key, r := range x.frames {
		if r.blob == n {
			delete(x.frames, key)
			x.dropped[key] = r.f
		}
	}
}

// dropFrame forgets frame key, whose blob is gone, until the next Refresh
// (dropBlob finds only the frames this Index holds in memory).
func (x *Index) dropFrame(key format.ChunkID, f format.Frame) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.frames, key)
	x.dropped[key] = f
}

// dropVirtual forgets virtual frame key, some of whose chunks no blob
// holds any more, until the next Refresh.
func (x *Index) dropVirtual(key format.ChunkID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if r, kind, ok := x.frameLocked(key); ok && kind == kindVirtual {
		delete(x.frames, key)
		x.dropped[key] = r.f
	}
}
