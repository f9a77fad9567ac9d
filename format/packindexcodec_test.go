package format

import (
	"encoding/binary"
	"errors"
	"testing"
)

func rawPackIndex(t *testing.T, p *PackIndex) []byte {
	t.Helper()
	b, err := p.encodeValid()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pidxHeader(n uint64) []byte {
	b := append([]byte(packIndexMagic), 1)
	return binary.AppendUvarint(b, n)
}

func validPackIndex() *PackIndex {
	return &PackIndex{Frames: []Frame{
		{Encoding: EncodingZstd, StoredSize: 100, Digest: idB, Chunks: []ChunkRef{{ID: idA, Size: 300}, {ID: idB, Size: 20}}},
		{Encoding: EncodingRaw, StoredSize: 7, Digest: idA, Chunks: []ChunkRef{{ID: idB, Size: 7}}},
	}}
}

// frameCases are pack indexes whose Encode must fail and whose
// unvalidated encoding DecodePackIndex must reject.
func frameCases() []struct {
	name   string
	p      PackIndex
	want   string
	vector bool
} {
	one := func(f Frame) PackIndex { return PackIndex{Frames: []Frame{f}} }
	return []struct {
		name   string
		p      PackIndex
		want   string
		vector bool
	}{
		{"no frames", PackIndex{}, "pack index has no frames", true},
		{"unknown encoding", one(Frame{Encoding: 2, StoredSize: 1, Chunks: []ChunkRef{{ID: idA, Size: 1}}}), "pack index frame 0: unknown frame encoding 2", true},
		{"no chunks", one(Frame{Encoding: EncodingZstd, StoredSize: 1}), "pack index frame 0: frame has no chunks", true},
		{"zero chunk size", one(Frame{Encoding: EncodingZstd, StoredSize: 1, Chunks: []ChunkRef{{ID: idA, Size: 0}}}), "chunk 0: size 0 out of range", true},
		{"raw size mismatch", PackIndex{Frames: []Frame{validPackIndex().Frames[0], {Encoding: EncodingRaw, StoredSize: 8, Chunks: []ChunkRef{{ID: idA, Size: 7}}}}},
			"pack index frame 1: raw frame stored size 8 != raw size 7", true},
		{"zstd stored size 0", one(Frame{Encoding: EncodingZstd, StoredSize: 0, Chunks: []ChunkRef{{ID: idA, Size: 1}}}),
			"pack index frame 0: zstd frame stored size 0 not in [1, 64] (the zstd bound of raw size 1)", true},
		{"zstd stored size over the bound", one(Frame{Encoding: EncodingZstd, StoredSize: 3074, Chunks: []ChunkRef{{ID: idA, Size: 3000}}}),
			"pack index frame 0: zstd frame stored size 3074 not in [1, 3073] (the zstd bound of raw size 3000)", true},
		{"raw size too large", one(Frame{Encoding: EncodingZstd, StoredSize: 9, Chunks: []ChunkRef{{ID: idA, Size: MaxFrameRawSize}, {ID: idB, Size: 1}}}),
			"raw size exceeds 16777216 bytes", true},
	}
}

func TestPackIndexRejectsInvalidFrames(t *testing.T) {
	for _, c := range frameCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.p.Encode()
			want := c.want
			if c.name == "zero chunk size" {
				want = "chunk 0 sha256:" // the encoder names the chunk
			}
			checkInvalid(t, "Encode", err, want)
			_, err = DecodePackIndex(rawPackIndex(t, &c.p))
			checkInvalid(t, "DecodePackIndex", err, c.want)
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
		})
	}
}

func invalidPackIndexCases(t *testing.T) []invalidCase {
	valid := rawPackIndex(t, validPackIndex())
	frame := func(enc byte, stored uint64, nchunks uint64) []byte {
		b := append(pidxHeader(1), enc)
		b = binary.AppendUvarint(b, stored)
		b = append(b, idA[:]...)
		return binary.AppendUvarint(b, nchunks)
	}
	cases := []invalidCase{
		{"bad magic", append([]byte("oci2tree"), 1, 0), "not a pack index: bad magic", true},
		{"version 2", append(pidxHeader(1)[:8], 2, 1), "unsupported pack index version 2", true},
		{"trailing byte", append(append([]byte{}, valid...), 0), "pack index: 1 trailing bytes", true},
		{"truncated", valid[:len(valid)-1], "pack index frame 1: chunk count 1 exceeds what the 32 bytes left can hold", true},
		{"non-minimal stored size", append(append(pidxHeader(1), 0, 0x81, 0x00), make([]byte, 70)...), "pack index frame 0: stored size: non-minimal uvarint", true},
		{"frame count 2^60", pidxHeader(1 << 60), "pack index frame count 1152921504606846976 exceeds", true},
		{"chunk count 2^60", append(frame(1, 5, 1<<60), make([]byte, 40)...), "chunk count 1152921504606846976 exceeds", true},
		{"chunk size over 32 bits", append(binary.AppendUvarint(frame(1, 5, 1), 1<<32), idA[:]...), "chunk 0: size 4294967296 out of range", true},
		{"too large", make([]byte, MaxPackIndexSize+1), "pack index of 67108865 bytes exceeds 67108864", false},
	}
	for _, c := range frameCases() {
		if c.vector {
			cases = append(cases, invalidCase{c.name, rawPackIndex(t, &c.p), c.want, true})
		}
	}
	return cases
}

func TestDecodePackIndexRejects(t *testing.T) {
	for _, c := range invalidPackIndexCases(t) {
		_, err := DecodePackIndex(c.b)
		checkInvalid(t, c.name, err, c.want)
	}
}

func TestPackIndexRoundTrip(t *testing.T) {
	p := validPackIndex()
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	q, err := DecodePackIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	if q.PackSize() != 107 || q.Frames[0].RawSize() != 320 || q.Frames[1].Chunks[0] != p.Frames[1].Chunks[0] {
		t.Fatalf("decoded %+v", q)
	}
	b[len(b)-1] ^= 1 // the returned value must not alias b
	if q.Frames[1].Chunks[0].ID != idB {
		t.Fatal("decoded pack index aliases its input")
	}
}

// TestZstdBound pins ZstdBound to libzstd's ZSTD_COMPRESSBOUND.
func TestZstdBound(t *testing.T) {
	for raw, want := range map[uint64]uint64{0: 64, 1: 64, 3000: 3073, 128 << 10: 131584, MaxFrameRawSize: 16842752} {
		if got := ZstdBound(raw); got != want {
			t.Errorf("ZstdBound(%d) = %d, want %d", raw, got, want)
		}
	}
}
