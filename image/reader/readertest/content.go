package readertest

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
)

// Content reassembles a regular file from its extents (zero extents as
// zeros), failing the test when a chunk cannot be read.
func Content(t testing.TB, cr *reader.ChunkReader, e *format.Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, x := range e.Extents {
		if x.Zero {
			buf.Write(make([]byte, x.Length))
			continue
		}
		b, err := cr.ReadChunk(t.Context(), x.Chunk)
		if err != nil {
			t.Fatalf("ReadChunk %s: %v", x.Chunk, err)
		}
		buf.Write(b)
	}
	return buf.Bytes()
}

// RandBytes returns n reproducible pseudo-random (incompressible) bytes.
func RandBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
