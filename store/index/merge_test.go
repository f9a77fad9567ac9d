package index

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/oci2/oci2/format"
)

// mergeInMemory is how index files were merged before merges streamed:
// everything the files hold collected in one tableBuilder. The streaming
// merge must write the same bytes.
func mergeInMemory(dir string, tabs []*table, keep func(format.ChunkID) bool) (string, error) {
	b := newTableBuilder()
	for _, t := range tabs {
		if err := mergeInto(b, t, keep); err != nil {
			return "", err
		}
	}
	return b.write(dir)
}

// mergeInto adds everything t holds to b. keep, when set, says which blobs
// are still stored: entries of the others are dropped (a stored frame of a
// dropped blob stays known as pending).
func mergeInto(b *tableBuilder, t *table, keep func(format.ChunkID) bool) error {
	kept := func(d format.ChunkID) bool { return keep == nil || keep(d) }
	fs, err := t.frameSection()
	if err != nil {
		return err
	}
	for i := 0; i < t.nBlobs(); i++ {
		f, unit, err := t.blobFrame(uint32(i))
		if err != nil {
			return err
		}
		if kept(f.Digest) {
			b.addBlob(f, unit)
		}
	}
	for i := 0; i < t.nFrames(); i++ {
		e := fs[i*entrySize:]
		var key format.ChunkID
		copy(key[:], e[:32])
		kind, ref := le32(e[40:]), le64(e[32:])
		var f format.Frame
		var err error
		if kind == kindStored {
			if ref > uint64(^uint32(0)) {
				return fmt.Errorf("index file %s: frame blob %d: %w", t.name, ref, errCorrupt)
			}
			f, _, err = t.blobFrame(uint32(ref))
		} else {
			f, err = t.record(ref)
		}
		if err != nil {
			return err
		}
		if kind == kindStored && !kept(f.Digest) {
			kind = kindPending
		}
		b.addFrame(key, kind, f)
	}
	eachDigest(t.done, digestSize, func(d, _ format.ChunkID) {
		if kept(d) {
			b.done[d] = true
		}
	})
	eachDigest(t.units, digestSize, func(d, _ format.ChunkID) {
		if kept(d) {
			b.units[d] = true
		}
	})
	eachDigest(t.packs, packSize, func(idx, p format.ChunkID) {
		if kept(idx) {
			b.packs[idx] = p
		}
	})
	return nil
}

// randomTables writes n index files of overlapping random content: blobs
// in several files (a unit in some), frame keys of every kind in several
// files, stored ones of blobs some merges drop, and done, units and packs
// (a pack index naming another pack in a later file).
func randomTables(t *testing.T, dir string, rng *rand.Rand, n int) []*table {
	t.Helper()
	id := func(s string, i int) format.ChunkID { return format.Sum([]byte(fmt.Sprint(s, i))) }
	blobs := make([]format.Frame, 400)
	for i := range blobs {
		f := format.Frame{Encoding: format.EncodingRaw, Digest: id("blob", i)}
		seen := map[int]bool{}
		for k := 1 + rng.Intn(40); k > 0; k-- {
			c := rng.Intn(3000)
			if seen[c] {
				continue
			}
			seen[c] = true
			f.Chunks = append(f.Chunks, format.ChunkRef{ID: id("chunk", c), Size: uint32(1 + c%977)})
			f.StoredSize += uint64(1 + c%977)
		}
		blobs[i] = f
	}
	var tabs []*table
	for range n {
		b := newTableBuilder()
		for range 150 {
			b.addBlob(blobs[rng.Intn(len(blobs))], rng.Intn(3) == 0)
		}
		for range 200 {
			key, f := id("frame", rng.Intn(600)), blobs[rng.Intn(len(blobs))]
			b.addFrame(key, uint32(1+rng.Intn(3)), f)
		}
		for range 30 {
			b.done[id("done", rng.Intn(60))] = true
			b.units[id("blob", rng.Intn(len(blobs)))] = true
			b.packs[id("index", rng.Intn(60))] = id("pack", rng.Intn(1000))
		}
		name, err := b.write(dir)
		if err != nil {
			t.Fatal(err)
		}
		tab, err := openTable(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tab.close)
		tabs = append(tabs, tab)
	}
	return tabs
}

// TestStreamingMergeMatchesInMemory: merging index files entry by entry
// writes the very bytes collecting them in memory wrote, with and without
// dropping blobs (as gc's Rewrite does), and leaves no temporary file.
func TestStreamingMergeMatchesInMemory(t *testing.T) {
	seed := rand.Int63()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	tabs := randomTables(t, dir, rng, 6)
	dropped := map[format.ChunkID]bool{}
	for i := range 400 {
		if rng.Intn(3) == 0 {
			dropped[format.Sum([]byte(fmt.Sprint("blob", i)))] = true
		}
	}
	for _, keep := range []func(format.ChunkID) bool{nil, func(d format.ChunkID) bool { return !dropped[d] }} {
		out, err := os.MkdirTemp(dir, "out")
		if err != nil {
			t.Fatal(err)
		}
		want, err := mergeInMemory(out, tabs, keep)
		if err != nil {
			t.Fatal(err)
		}
		got, err := merge(out, tabs, keep)
		if err != nil {
			t.Fatal(err)
		}
		got.close()
		if got.nc < 2*mergeWindow {
			t.Fatalf("merged %d chunk entries: too few to cross a cursor's window", got.nc)
		}
		wb, err := os.ReadFile(filepath.Join(out, want))
		if err != nil {
			t.Fatal(err)
		}
		gb, err := os.ReadFile(filepath.Join(out, got.name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gb, wb) {
			t.Fatalf("keep %v: streaming merge wrote %d bytes, in memory %d, not the same", keep != nil, len(gb), len(wb))
		}
		es, _ := os.ReadDir(out)
		if len(es) != 2 {
			t.Fatalf("%d files after two merges, want 2", len(es))
		}
	}
}
