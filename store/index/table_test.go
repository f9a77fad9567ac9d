package index

import (
	"testing"

	"github.com/oci2/oci2/format"
)

// TestSearchCachesTopLevels: lookups of every chunk of a big index file
// leave only the blocks of the binary searches' top levels in the file's
// cache, not every block they read once (which took 4 MiB per file).
func TestSearchCachesTopLevels(t *testing.T) {
	dir := t.TempDir()
	b := newTableBuilder()
	var chunks []format.ChunkRef
	for i := 0; i < 60000; i++ { // 645 blocks of chunk entries
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
	defer tab.close()
	for _, c := range chunks {
		found := false
		tab.chunkHolders(c.ID, func(h tchunk) bool { found = true; return false })
		if !found {
			t.Fatalf("chunk %s not found", c.ID)
		}
	}
	absent := format.Sum([]byte("absent"))
	tab.chunkHolders(absent, func(tchunk) bool { t.Fatal("absent chunk found"); return false })
	// The top levels of the chunk section, and the blocks read at open.
	if n := len(tab.blocks); n > 1<<searchCachedLevels+8 {
		t.Errorf("%d blocks cached after %d lookups, want at most %d", n, len(chunks), 1<<searchCachedLevels+8)
	}
}
