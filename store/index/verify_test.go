package index

import (
	"context"
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
