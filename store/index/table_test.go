package index

import (
	"testing"

	"github.com/oci2/oci2/format"
)

// bigTable writes an index file of 60,000 one-chunk-of-4-bytes entries
// (645 blocks of chunk entries) in units of 1000 and opens it.
func bigTable(t *testing.T) (*table, []format.ChunkRef) {
	t.Helper()
	dir := t.TempDir()
	b := newTableBuilder()
	var chunks []format.ChunkRef
	for i := 0; i < 60000; i++ {
		c := []byte{byte(i), byte(i >> 8), byte(i >> 16), 'c'}
		chunks = append(chunks, format.ChunkRef{ID: format.Sum(c), Size: 4})
	}
	for i := 0; i < len(chunks); i += 1000 {
		part := chunks[i:min(i+1000, len(chunks))]
		f := format.Frame{Encoding: format.EncodingRaw, StoredSize: uint64(4 * len(part)),
			Digest: format.Sum([]byte{byte(i), byte(i >> 8), 'u'}), Chunks: part}
		b.addBlob(f, true)
	}
	name, err := b.write(dir)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := openTable(dir + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tab.close)
	return tab, chunks
}

// TestSearchCachesTopLevels: lookups of every chunk of a big index file
// leave in the file's cache only the keys of the binary searches' top
// levels, not every block they read once (which took 4 MiB per file), nor
// the blocks of those keys (1 MiB per big section).
func TestSearchCachesTopLevels(t *testing.T) {
	tab, chunks := bigTable(t)
	opened := len(tab.blocks)
	for _, c := range chunks {
		found := false
		tab.chunkHolders(c.ID, func(h tchunk) bool { found = true; return false })
		if !found {
			t.Fatalf("chunk %s not found", c.ID)
		}
	}
	absent := format.Sum([]byte("absent"))
	tab.chunkHolders(absent, func(tchunk) bool { t.Fatal("absent chunk found"); return false })
	if n := len(tab.blocks); n > opened {
		t.Errorf("%d blocks cached after %d lookups, want the %d read at open", n, len(chunks), opened)
	}
	if n := len(tab.keys); n == 0 || n >= 1<<searchCachedLevels {
		t.Errorf("%d keys cached after %d lookups, want 1 to %d", n, len(chunks), 1<<searchCachedLevels-1)
	}
}

// TestLookupAllocations: a lookup whose top levels are cached allocates
// neither a block buffer nor a copy of each probed key. Each lookup took
// a fresh 4 KiB buffer and 16 small copies, the bulk of a small create's
// garbage on a store of 2 million chunks.
func TestLookupAllocations(t *testing.T) {
	tab, chunks := bigTable(t)
	for _, c := range chunks { // fill the cache of the top levels
		tab.chunkHolders(c.ID, func(tchunk) bool { return false })
	}
	var bytes int
	i := 0
	allocs := testing.AllocsPerRun(2000, func() {
		c := chunks[i%len(chunks)]
		i += 7919
		tab.chunkHolders(c.ID, func(h tchunk) bool { bytes += int(h.size); return false })
		if _, ok := tab.findBlob(format.Sum([]byte{byte(i), byte(i >> 8), 'u'})); ok {
			bytes++
		}
	})
	if bytes == 0 {
		t.Fatal("no chunk found")
	}
	// The memo and the search's closure of each of the two lookups.
	if allocs > 6 {
		t.Errorf("%.1f allocations per chunk and blob lookup, want at most 6", allocs)
	}
}
