package index_test

import (
	"bytes"
	"testing"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store/index"
)

// FuzzDecodeUnit: any descriptor bytes, under any name, decode to a valid
// frame named by its digest or fail with an error; never a panic. What
// decodes encodes back to the same bytes (descriptors are canonical).
func FuzzDecodeUnit(f *testing.F) {
	a, b := []byte("first chunk"), []byte("second chunk of a unit")
	u, _ := index.MakeUnit([]format.ChunkRef{
		{ID: format.Sum(a), Size: uint32(len(a))},
		{ID: format.Sum(b), Size: uint32(len(b))},
	}, append(append([]byte{}, a...), b...))
	desc, err := index.EncodeUnit(u)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(desc, true)
	f.Add(desc, false)
	f.Add([]byte{}, true)
	f.Add(desc[:len(desc)/2], true)
	f.Fuzz(func(t *testing.T, b []byte, ownName bool) {
		name := u.Digest.Digest()
		if !ownName {
			name = format.Sum(b).Digest()
		}
		fr, err := index.DecodeUnit(name, b)
		if err != nil {
			return
		}
		if fr.Digest.Digest() != name {
			t.Fatalf("unit %s decoded to frame %s", name, fr.Digest)
		}
		again, err := index.EncodeUnit(fr)
		if err != nil {
			t.Fatalf("decoded unit does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("unit descriptor is not canonical: %x re-encodes to %x", b, again)
		}
	})
}
