package index

import (
	"github.com/oci2/oci2/format"
)

// Lookups go to what this Index added since it last saved (the maps of
// Index) and then to the index files it has open. A blob of an index file
// is read into Index.blobs (given a number) only when a lookup returns it,
// so memory grows with what a command touches, not with the store.

// heldLocked reports whether a blob not found missing holds chunk id.
func (x *Index) heldLocked(id format.ChunkID) bool {
	if _, ok := x.chunks[id]; ok {
		return true
	}
	for _, t := range x.tabs {
		found := false
		t.chunkHolders(id, func(c tchunk) bool {
			d, _, _, err := t.blobAt(c.blob)
			found = err == nil && !x.gone[d]
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

// locateLocked returns where chunk id is held: in a unit when one holds it
// (see addBlobLocked), else in a frame; blobs found missing are skipped.
func (x *Index) locateLocked(id format.ChunkID) (chunkLoc, bool) {
	loc, ok := x.chunks[id]
	if ok && x.blobs[loc.blob].unit {
		return loc, true
	}
	for _, t := range x.tabs {
		done := false
		t.chunkHolders(id, func(c tchunk) bool {
			n, ok2 := x.loadBlobLocked(t, c.blob)
			if !ok2 {
				return true
			}
			if x.blobs[n].unit || !ok {
				loc, ok = chunkLoc{blob: n, offset: c.offset, size: c.size}, true
				done = x.blobs[n].unit
			}
			return !done
		})
		if done {
			break
		}
	}
	return loc, ok
}

// loadBlobLocked returns the number of blob no of t, reading it in when
// this Index has not yet; ok is false for a blob found missing or a record
// that does not decode.
func (x *Index) loadBlobLocked(t *table, no uint32) (int32, bool) {
	d, _, flags, err := t.blobAt(no)
	if err != nil || x.gone[d] {
		return 0, false
	}
	if n, ok := x.byBlob[d]; ok {
		if flags&blobUnit != 0 {
			x.blobs[n].unit = true
		}
		return n, true
	}
	f, unit, err := t.blobFrame(no)
	if err != nil {
		return 0, false
	}
	n := int32(len(x.blobs))
	x.blobs = append(x.blobs, blob{f: f, unit: unit, saved: true})
	x.blobChunks += len(f.Chunks)
	x.byBlob[d] = n
	return n, true
}

// frameLocked returns the frame known under key and its kind: stored (r.blob
// is its blob), virtual, or pending (named by an image, its blob missing
// when scanned). A stored frame whose blob was found missing is pending;
// frames dropped since the last Refresh are not found.
func (x *Index) frameLocked(key format.ChunkID) (r frameRec, kind uint32, ok bool) {
	if _, dropped := x.dropped[key]; dropped {
		return frameRec{}, 0, false
	}
	if r, ok := x.frames[key]; ok {
		if r.blob >= 0 {
			return r, kindStored, true
		}
		return r, kindVirtual, true
	}
	if f, ok := x.pending[key]; ok {
		r, kind = frameRec{f: f, blob: -1}, kindPending
	}
	for _, t := range x.tabs {
		k, ref, found := t.findFrame(key)
		if !found || (kind != 0 && k >= kind) {
			continue
		}
		switch k {
		case kindStored:
			if ref > uint64(^uint32(0)) {
				continue
			}
			if n, ok := x.loadBlobLocked(t, uint32(ref)); ok {
				r, kind = frameRec{f: x.blobs[n].f, blob: n}, kindStored
			} else if f, _, err := t.blobFrame(uint32(ref)); err == nil && kind == 0 {
				r, kind = frameRec{f: f, blob: -1}, kindPending
			}
		case kindVirtual, kindPending:
			if f, err := t.record(ref); err == nil {
				r, kind = frameRec{f: f, blob: -1}, k
			}
		}
	}
	return r, kind, kind != 0
}

// tableChunks returns the chunk entries of the open index files (a chunk
// counts once per blob holding it).
func (x *Index) tableChunks() (n int) {
	for _, t := range x.tabs {
		n += t.nChunks()
	}
	return n
}

// countLocked counts the frames (stored and virtual) and chunks x locates.
func (x *Index) countLocked() (frames, chunks int) {
	keys := make(map[format.ChunkID]bool, len(x.frames))
	ids := make(map[format.ChunkID]bool, len(x.chunks))
	for k := range x.frames {
		keys[k] = true
	}
	for id := range x.chunks {
		ids[id] = true
	}
	for _, t := range x.tabs {
		fs, err1 := t.frameSection()
		cs, err2 := t.chunkSection()
		if err1 != nil || err2 != nil {
			continue
		}
		for i := 0; i < t.nFrames(); i++ {
			keys[format.ChunkID(fs[i*entrySize:i*entrySize+32])] = true
		}
		for i := 0; i < t.nChunks(); i++ {
			ids[format.ChunkID(cs[i*entrySize:i*entrySize+32])] = true
		}
	}
	for k := range keys {
		if _, kind, ok := x.frameLocked(k); ok && kind != kindPending {
			frames++
		}
	}
	for id := range ids {
		if x.heldLocked(id) {
			chunks++
		}
	}
	return frames, chunks
}
