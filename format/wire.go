package format

import (
	"encoding/binary"
	"math"
)

// wireReader reads the primitives of the binary encodings with bounds checks.
// Every length is checked against the bytes left before anything is
// allocated, so a hostile count cannot make the decoder allocate more than a
// small multiple of its input.
type wireReader struct {
	b   []byte
	off int
}

func (r *wireReader) left() int { return len(r.b) - r.off }

func (r *wireReader) uvarint(what string) (uint64, error) {
	v, n := binary.Uvarint(r.b[r.off:])
	switch {
	case n == 0:
		return 0, invalidf("%s: truncated", what)
	case n < 0:
		return 0, invalidf("%s: uvarint overflows 64 bits", what)
	case n > 1 && r.b[r.off+n-1] == 0:
		return 0, invalidf("%s: non-minimal uvarint", what)
	}
	r.off += n
	return v, nil
}

func (r *wireReader) uvarint32(what string) (uint32, error) {
	v, err := r.uvarint(what)
	if err != nil {
		return 0, err
	}
	if v > math.MaxUint32 {
		return 0, invalidf("%s: %d does not fit in 32 bits", what, v)
	}
	return uint32(v), nil
}

func (r *wireReader) varint(what string) (int64, error) {
	u, err := r.uvarint(what)
	if err != nil {
		return 0, err
	}
	// Zig-zag, as binary.Varint.
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v, nil
}

func (r *wireReader) byte1(what string) (byte, error) {
	if r.left() < 1 {
		return 0, invalidf("%s: truncated", what)
	}
	b := r.b[r.off]
	r.off++
	return b, nil
}

// bytes returns the next n bytes (aliasing the input).
func (r *wireReader) bytes(n uint64, what string) ([]byte, error) {
	if n > uint64(r.left()) {
		return nil, invalidf("%s: length %d exceeds the %d bytes left", what, n, r.left())
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

// lenBytes reads a uvarint length (at most max) and that many bytes.
func (r *wireReader) lenBytes(max uint64, what string) ([]byte, error) {
	n, err := r.uvarint(what + " length")
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, invalidf("%s: length %d exceeds %d", what, n, max)
	}
	return r.bytes(n, what)
}

func (r *wireReader) id(what string) (ChunkID, error) {
	var c ChunkID
	b, err := r.bytes(32, what)
	if err != nil {
		return c, err
	}
	copy(c[:], b)
	return c, nil
}

// count reads an element count and checks that the bytes left can hold that
// many elements of at least minSize bytes each.
func (r *wireReader) count(minSize int, what string) (int, error) {
	n, err := r.uvarint(what)
	if err != nil {
		return 0, err
	}
	if n > uint64(r.left()/minSize) {
		return 0, invalidf("%s %d exceeds what the %d bytes left can hold", what, n, r.left())
	}
	return int(n), nil
}

func appendLenBytes(b []byte, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendLenString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// firstDiff returns the first offset where a and b differ.
func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
