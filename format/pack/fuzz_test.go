package pack

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/oci2/oci2/format"
)

// FuzzDecodeFrame feeds DecodeFrame stored bytes under an index entry whose
// digest matches them (so decoding is reached), with chunk sizes from the
// input. It must never panic nor return other than exactly the declared raw
// size, and a frame that decodes must verify against its own chunk IDs.
func FuzzDecodeFrame(f *testing.F) {
	text := bytes.Repeat([]byte("compressible frame content "), 400)
	enc, z := EncodeFrame(text)
	sizes := func(ns ...uint16) []byte {
		var b []byte
		for _, n := range ns {
			b = binary.BigEndian.AppendUint16(b, n-1)
		}
		return b
	}
	f.Add(byte(enc), sizes(4000, uint16(len(text)-4000)), z)
	f.Add(byte(format.EncodingRaw), sizes(3, 2), []byte("hello"))
	f.Add(byte(enc), sizes(uint16(len(text))), z[:len(z)/2]) // truncated
	w, _ := zstd.NewWriter(nil)
	var stream bytes.Buffer // no content size in the header
	sw, _ := zstd.NewWriter(&stream)
	sw.Write(text)
	sw.Close()
	f.Add(byte(enc), sizes(uint16(len(text))), stream.Bytes())
	f.Add(byte(enc), sizes(16), w.EncodeAll(make([]byte, 1<<20), nil)) // a bomb for 16 bytes
	f.Fuzz(func(t *testing.T, encoding byte, sizes, stored []byte) {
		fr := format.Frame{Encoding: format.Encoding(encoding % 3), StoredSize: uint64(len(stored)), Digest: format.Sum(stored)}
		for i := 0; i+1 < len(sizes) && len(fr.Chunks) < 8; i += 2 {
			fr.Chunks = append(fr.Chunks, format.ChunkRef{Size: uint32(binary.BigEndian.Uint16(sizes[i:])) + 1})
		}
		raw, err := DecodeFrame(&fr, stored, false)
		if err != nil {
			return
		}
		if uint64(len(raw)) != fr.RawSize() {
			t.Fatalf("decoded %d bytes, raw size %d", len(raw), fr.RawSize())
		}
		if fr.Encoding == format.EncodingRaw && !bytes.Equal(raw, stored) {
			t.Fatal("raw frame decoded to other bytes")
		}
		var off uint32
		for i := range fr.Chunks {
			n := fr.Chunks[i].Size
			fr.Chunks[i].ID = format.Sum(raw[off : off+n])
			off += n
		}
		again, err := DecodeFrame(&fr, stored, true)
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("second decode with the chunk IDs: %v", err)
		}
	})
}
