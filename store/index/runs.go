package index

import "context"

// A scan of a store no index file covers (a first open, or after the files
// were removed or found damaged) holds what it finds in memory until it
// saves it as an index file. It saves whenever what it holds would pass
// runEntries, so it writes sorted runs of bounded size as ordinary index
// files, which the size-tiered merges of save then combine entry by entry
// (merge.go): neither holds the store in memory. While New scans, nothing
// else uses the Index, so each save also forgets the blobs it wrote
// (forgetSavedLocked): the Index then reads them from the files, as one
// opened on files that cover the store does.
var runEntries = 256 << 10

// inMemoryLocked returns what x holds in memory that grows with a scan
// (chunk locations, the chunk lists of the blobs it describes and of the
// frames found pending, frames by key), and how much of it a save releases: after New, the blobs stay
// (sessions hold their numbers) and so do the pending frames saved
// (recheck), so a Refresh of a long-lived Index bounds only the rest.
func (x *Index) inMemoryLocked() (held, released int) {
	released = len(x.chunks) + len(x.frames) + len(x.pending) + x.pendingChunks
	held = released + x.blobChunks + len(x.recheck)
	if x.opening {
		released = held
	}
	return held, released
}

// makeRoom saves what x holds as an index file when adding n entries would
// pass runEntries, and records the most x held (heldMax).
func (x *Index) makeRoom(ctx context.Context, n int) error {
	x.mu.Lock()
	held, released := x.inMemoryLocked()
	x.mu.Unlock()
	if released > 0 && released+n > runEntries && x.dir != "" {
		if err := x.save(ctx); err != nil {
			return err
		}
		x.mu.Lock()
		held, _ = x.inMemoryLocked()
		x.mu.Unlock()
	}
	for m := x.heldMax.Load(); int64(held+n) > m && !x.heldMax.CompareAndSwap(m, int64(held+n)); m = x.heldMax.Load() {
	}
	return nil
}

// forgetSavedLocked forgets the blobs just saved, which New's scan need not
// keep (see runEntries): their numbers are in no map any more (save
// cleared them) and no session has seen them yet. Blobs found missing stay.
func (x *Index) forgetSavedLocked() {
	kept := x.blobs[:0]
	clear(x.byBlob)
	x.blobChunks = 0
	for _, b := range x.blobs {
		if b.saved && !b.gone && !b.kept {
			continue
		}
		x.byBlob[b.f.Digest] = int32(len(kept))
		x.blobChunks += len(b.f.Chunks)
		kept = append(kept, b)
	}
	clear(x.blobs[len(kept):])
	x.blobs = kept
}
