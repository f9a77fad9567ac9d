package index

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store/memstore"
)

// TestVerifyCoverage: a file that says it scanned a pack index, while no
// file holds that pack index's frames, is reported.
func TestVerifyCoverage(t *testing.T) {
	dir := t.TempDir()
	pi := format.Sum([]byte("a pack index"))
	b := newTableBuilder()
	b.done[pi] = true
	if _, err := b.write(dir); err != nil {
		t.Fatal(err)
	}
	chunk := []byte("chunk")
	f := format.Frame{Encoding: format.EncodingRaw, StoredSize: uint64(len(chunk)), Digest: format.Sum(chunk),
		Chunks: []format.ChunkRef{{ID: format.Sum(chunk), Size: uint32(len(chunk))}}}
	scanned := map[digest.Digest][]format.Frame{pi.Digest(): {f}}
	ms, err := Verify(context.Background(), dir, memstore.New(), scanned)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Blob != f.Digest.Digest() || !strings.Contains(ms[0].Message, "scanned") {
		t.Fatalf("mismatches %v, want the frame of the scanned pack index", ms)
	}
	b.addFrame(format.Sum([]byte("key")), kindPending, f) // the wrong key
	if _, err := b.write(dir); err != nil {
		t.Fatal(err)
	}
	if ms, err = Verify(context.Background(), dir, memstore.New(), nil); err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || !strings.Contains(ms[0].Message, "another key") {
		t.Fatalf("mismatches %v, want the frame under a wrong key", ms)
	}
}

// TestLazyBlockCheck: a flipped byte in a block no lookup read yet opens
// fine; the first lookup that reads the block finds nothing and marks the
// file corrupt, and the next Refresh removes the index files and scans.
func TestLazyBlockCheck(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b := newTableBuilder()
	var chunks []format.ChunkRef
	for i := 0; i < 4000; i++ { // several blocks of chunk entries
		c := []byte{byte(i), byte(i >> 8), 'c'}
		chunks = append(chunks, format.ChunkRef{ID: format.Sum(c), Size: 3})
	}
	f := format.Frame{Encoding: format.EncodingRaw, StoredSize: 3 * 4000, Digest: format.Sum([]byte("unit")), Chunks: chunks}
	b.addBlob(f, true)
	name, err := b.write(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := dir + "/" + name
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	victim := 8 + 44*3000 // an entry of the chunk table's third block
	data[victim] ^= 1
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tab, err := openTable(path)
	if err != nil {
		t.Fatalf("opening with a damaged lazily checked block: %v", err)
	}
	defer tab.close()
	found := 0
	for _, c := range chunks {
		tab.chunkHolders(c.ID, func(tchunk) bool { found++; return true })
	}
	if !tab.corrupt.Load() {
		t.Fatal("damaged block read without the file marked corrupt")
	}
	if found == len(chunks) {
		t.Error("every chunk found in a file with a damaged block")
	}

	x, err := New(ctx, memstore.New(), WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	held := 0
	for _, c := range chunks {
		if x.HasChunk(c.ID) {
			held++
		}
	}
	if held == len(chunks) {
		t.Error("an Index found every chunk in a file with a damaged block")
	}
	if err := x.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("damaged index file kept after Refresh: %v", err)
	}
	if x.HasChunk(chunks[0].ID) {
		t.Error("chunk of the removed file still found")
	}
}
