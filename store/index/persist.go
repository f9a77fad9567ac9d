package index

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
)

// openDir opens the index files of x.dir. When one fails its checks every
// file is removed: what a file covers may rely on entries of another (a
// scan does not add again what the index knew), so only a full scan
// rebuilds the index soundly.
func (x *Index) openDir() error {
	if x.dir == "" {
		return nil
	}
	if err := os.MkdirAll(x.dir, 0o755); err != nil {
		return fmt.Errorf("opening index: %w", err)
	}
	tabs, bad, err := openTables(x.dir, nil)
	if err != nil {
		return fmt.Errorf("opening index: %w", err)
	}
	if len(bad) > 0 {
		closeTables(tabs)
		tabs = nil
		if err := removeTables(x.dir); err != nil {
			return fmt.Errorf("removing the index after finding %s corrupt: %w", bad[0], err)
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.addTablesLocked(tabs, true)
	return nil
}

// loadNewTables opens the index files other processes added since, and
// closes those that were merged away (their content is in a new file).
func (x *Index) loadNewTables() error {
	if x.dir == "" {
		return nil
	}
	x.mu.Lock()
	have := make(map[string]bool, len(x.tabNames))
	for n := range x.tabNames {
		have[n] = true
	}
	x.mu.Unlock()
	tabs, _, err := openTables(x.dir, have)
	if err != nil {
		return err
	}
	names, err := listTables(x.dir)
	if err != nil {
		closeTables(tabs)
		return err
	}
	present := make(map[string]bool, len(names))
	for _, n := range names {
		present[n] = true
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	n := len(x.tabs)
	x.dropTablesLocked(func(t *table) bool { return !present[t.name] })
	gone := len(x.tabs) < n
	x.addTablesLocked(tabs, true)
	if gone {
		x.recheckSavedLocked()
	}
	return nil
}

// recheckSavedLocked runs after index files were removed by another
// process: a merge (their entries are in the new file) or a gc, which
// rewrites the files without the blobs it deletes. A blob this Index read
// from a removed file, or saved to one, is saved only if an open file still
// names it as it is; one no file names is forgotten (gc deleted it), so
// that a session storing it again indexes it anew (addBlobLocked trusts a
// saved blob's chunks to be in the files and does not add them again).
func (x *Index) recheckSavedLocked() {
	for i := range x.blobs {
		b := &x.blobs[i]
		if !b.saved || b.gone {
			continue
		}
		listed, same := false, false
		for _, t := range x.tabs {
			if no, ok := t.findBlob(b.f.Digest); ok {
				_, _, flags, err := t.blobAt(no)
				listed = true
				same = same || (err == nil && (flags&blobUnit != 0) == b.unit)
			}
		}
		b.saved = same
		if !listed {
			b.gone = true
			if n, ok := x.byBlob[b.f.Digest]; ok && n == int32(i) {
				delete(x.byBlob, b.f.Digest)
			}
		}
	}
}

// resetIfCorrupt removes every index file and forgets what they covered
// when a lookup found a block of one corrupt, so that the scan that
// follows (Refresh holds scanMu) rebuilds the index.
func (x *Index) resetIfCorrupt() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	bad := false
	for _, t := range x.tabs {
		bad = bad || t.corrupt.Load()
	}
	if !bad {
		return nil
	}
	x.dropTablesLocked(func(*table) bool { return true })
	if err := removeTables(x.dir); err != nil {
		return fmt.Errorf("removing the index after finding a file corrupt: %w", err)
	}
	clear(x.done)
	clear(x.unitsDone)
	for i := range x.blobs {
		x.blobs[i].saved = false
	}
	return nil
}

// addTablesLocked adds open index files; learn also takes in what they say
// was scanned, which only New and Refresh may (done and unitsDone are
// guarded by scanMu, which they hold or do not need yet). Called with x.mu
// held.
func (x *Index) addTablesLocked(tabs []*table, learn bool) {
	for _, t := range tabs {
		x.tabs = append(x.tabs, t)
		x.tabNames[t.name] = true
		if !learn {
			continue
		}
		eachDigest(t.done, digestSize, func(d, _ format.ChunkID) { x.done[d.Digest()] = true })
		eachDigest(t.units, digestSize, func(d, _ format.ChunkID) { x.unitsDone[d.Digest()] = true })
		eachDigest(t.packs, packSize, func(idx, p format.ChunkID) { x.packs[idx.Digest()] = p.Digest() })
	}
}

// dropTablesLocked closes and forgets the index files drop selects. The
// blobs read from them stay (they were copied).
func (x *Index) dropTablesLocked(drop func(*table) bool) {
	kept := x.tabs[:0]
	for _, t := range x.tabs {
		if drop(t) {
			delete(x.tabNames, t.name)
			t.close()
			continue
		}
		kept = append(kept, t)
	}
	clear(x.tabs[len(kept):])
	x.tabs = kept
}

// save writes what x learnt since it last saved as a new index file and
// then reads it from there, so memory holds only what the running write
// touches. It merges small files when there are too many.
func (x *Index) save(ctx context.Context) error {
	if x.dir == "" {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	b := x.deltaLocked()
	if b.empty() {
		return nil
	}
	name, err := b.write(x.dir)
	if err != nil {
		return err
	}
	t, err := openTable(filepath.Join(x.dir, name))
	if err != nil {
		return fmt.Errorf("reopening the index file just written: %w", err)
	}
	x.addTablesLocked([]*table{t}, false)
	for i := range x.blobs {
		x.blobs[i].saved = true
	}
	clear(x.chunks)
	clear(x.frames)
	if !x.opening {
		// Not while New scans: it just looked for them, and they are in
		// the file as pending, as in an Index opened on its files (which
		// does not hold them in memory to look for them again).
		for k, f := range x.pending {
			x.recheck[k] = f
		}
	}
	clear(x.pending)
	x.pendingChunks = 0
	clear(x.newDone)
	clear(x.newUnits)
	clear(x.newPacks)
	if x.opening {
		x.forgetSavedLocked()
	}
	if len(x.tabs) > maxTables {
		// Merging only saves lookups: the files written stay valid
		// when it fails, so the write does not.
		_ = x.compactLocked(ctx)
	}
	return nil
}

// deltaLocked returns what x knows that its index files do not say.
func (x *Index) deltaLocked() *tableBuilder {
	b := newTableBuilder()
	for _, bl := range x.blobs {
		if !bl.saved && !bl.gone {
			b.addBlob(bl.f, bl.unit)
		}
	}
	for key, r := range x.frames {
		switch {
		case r.blob < 0:
			b.addFrame(key, kindVirtual, r.f)
		case !x.blobs[r.blob].gone:
			bl := x.blobs[r.blob]
			b.addFrame(key, kindStored, bl.f)
			b.addBlob(bl.f, bl.unit)
		}
	}
	for key, f := range x.pending {
		b.addFrame(key, kindPending, f)
	}
	sha := func(d digest.Digest) (format.ChunkID, bool) {
		id, err := format.FromDigest(d)
		return id, err == nil
	}
	for d := range x.newDone {
		if id, ok := sha(d); ok {
			b.done[id] = true
		}
	}
	for d := range x.newUnits {
		if id, ok := sha(d); ok {
			b.units[id] = true
		}
	}
	for idx, p := range x.newPacks {
		i, ok1 := sha(idx)
		pd, ok2 := sha(p)
		if ok1 && ok2 {
			b.packs[i] = pd
		}
	}
	return b
}

// compactLocked merges the small index files into one, unless another
// process is merging.
func (x *Index) compactLocked(ctx context.Context) error {
	unlock, ok, err := lockDir(ctx, x.dir, false)
	if err != nil || !ok {
		return err
	}
	defer unlock()
	pick := pickMerge(x.tabs)
	if len(pick) == 0 {
		return nil
	}
	t, err := merge(x.dir, pick, nil)
	if err != nil {
		return fmt.Errorf("merging index files: %w", err)
	}
	picked := make(map[*table]bool, len(pick))
	for _, p := range pick {
		picked[p] = true
		if err := os.Remove(filepath.Join(x.dir, p.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.close()
			return fmt.Errorf("merging index files: %w", err)
		}
	}
	x.dropTablesLocked(func(t *table) bool { return picked[t] })
	x.addTablesLocked([]*table{t}, false)
	return nil
}

// Close releases the index files x has open. The Index must not be used
// afterwards.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.dropTablesLocked(func(*table) bool { return true })
	return nil
}
