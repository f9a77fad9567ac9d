package reader_test

import (
	"bytes"
	"testing"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	rt "github.com/oci2/oci2/image/reader/readertest"
)

// TestZstdFrameLargerThanRaw: SPEC.md §5.3 accepts on read a zstd frame
// that is not smaller than its raw bytes ("raw when not smaller" binds
// writers only), up to the zstd bound of the raw size; before issue 14 the
// reader refused any stored size above the raw size. Its neighbours (a
// stored size past the bound, a zstd stored size of 0) are pack index
// cases of format's TestPackIndexRejectsInvalidFrames and vectors.
func TestZstdFrameLargerThanRaw(t *testing.T) {
	content := randBytes(7, 3000) // incompressible: zstd output is larger
	root := rt.Dir("", 0o755, rt.File("f", 0o644, content))
	asZstd := func(tree bool, i int, f *format.Frame, b []byte) []byte {
		if tree {
			return b
		}
		z := rt.EncodeZstd(b)
		f.Encoding, f.StoredSize, f.Digest = format.EncodingZstd, uint64(len(z)), format.Sum(z)
		return z
	}
	st, desc := build(t, rt.Image{Streams: rt.Encode(root), EditFrame: asZstd})
	img, err := reader.Open(t.Context(), st, desc)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	f := &img.DataPacks[0].Index.Frames[0]
	if f.Encoding != format.EncodingZstd || f.StoredSize <= f.RawSize() {
		t.Fatalf("fixture frame: encoding %d, stored %d, raw %d", f.Encoding, f.StoredSize, f.RawSize())
	}
	cr := reader.NewChunkReader(img, reader.LocalFrames(st))
	got, err := cr.ReadChunk(t.Context(), format.Sum(content))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("ReadChunk: %d bytes, %v; want the file's %d", len(got), err, len(content))
	}

}
