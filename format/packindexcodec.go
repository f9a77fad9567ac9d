package format

import (
	"bytes"
	"encoding/binary"
	"math"
)

const (
	packIndexMagic   = "oci2pidx"
	packIndexVersion = 1

	// minFrameSize is the smallest encoded frame: encoding, stored size,
	// digest and chunk count (a frame without chunks is rejected later, with
	// a message saying so).
	minFrameSize = 1 + 1 + 32 + 1
	// minChunkRefSize is the smallest encoded chunk reference.
	minChunkRefSize = 1 + 32
)

// Validate checks f against SPEC.md §5.3 and §7: a known encoding, at least
// one chunk, chunk sizes of at least 1, a raw size of at most
// MaxFrameRawSize, for raw frames a stored size equal to the raw size and
// for zstd frames a stored size from 1 to ZstdBound(raw size).
func (f *Frame) Validate() error {
	if f.Encoding != EncodingRaw && f.Encoding != EncodingZstd {
		return invalidf("unknown frame encoding %d", f.Encoding)
	}
	if len(f.Chunks) == 0 {
		return invalidf("frame has no chunks")
	}
	var raw uint64
	for i, c := range f.Chunks {
		if c.Size == 0 {
			return invalidf("chunk %d %s: zero size", i, c.ID)
		}
		raw += uint64(c.Size)
		if raw > MaxFrameRawSize {
			return invalidf("raw size exceeds %d bytes", MaxFrameRawSize)
		}
	}
	if f.Encoding == EncodingRaw && f.StoredSize != raw {
		return invalidf("raw frame stored size %d != raw size %d", f.StoredSize, raw)
	}
	if max := ZstdBound(raw); f.Encoding == EncodingZstd && (f.StoredSize == 0 || f.StoredSize > max) {
		return invalidf("zstd frame stored size %d not in [1, %d] (the zstd bound of raw size %d)",
			f.StoredSize, max, raw)
	}
	return nil
}

// ZstdBound is zstd's ZSTD_COMPRESSBOUND(raw): the most any zstd compressor
// emits for raw bytes in one frame. A zstd frame may be larger than its raw
// bytes (writers store those raw, SPEC.md §5.2, but readers accept them);
// the bound keeps what a reader fetches for one frame proportional to the
// raw size it declares.
func ZstdBound(raw uint64) uint64 {
	b := raw + raw>>8
	if raw < 128<<10 {
		b += (128<<10 - raw) >> 11
	}
	return b
}

func (p *PackIndex) validate() error {
	if len(p.Frames) == 0 {
		return invalidf("pack index has no frames")
	}
	for i := range p.Frames {
		if err := p.Frames[i].Validate(); err != nil {
			return prefixed(err, "pack index frame %d", i)
		}
	}
	return nil
}

// Encode validates p (SPEC.md §5.3) and returns its canonical encoding.
func (p *PackIndex) Encode() ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	return p.encodeValid()
}

func (p *PackIndex) encodeValid() ([]byte, error) {
	n := 16
	for i := range p.Frames {
		n += 48 + 40*len(p.Frames[i].Chunks)
	}
	b := make([]byte, 0, min(n, MaxPackIndexSize+1))
	b = append(b, packIndexMagic...)
	b = binary.AppendUvarint(b, packIndexVersion)
	b = binary.AppendUvarint(b, uint64(len(p.Frames)))
	for i := range p.Frames {
		f := &p.Frames[i]
		b = append(b, byte(f.Encoding))
		b = binary.AppendUvarint(b, f.StoredSize)
		b = append(b, f.Digest[:]...)
		b = binary.AppendUvarint(b, uint64(len(f.Chunks)))
		for _, c := range f.Chunks {
			b = binary.AppendUvarint(b, uint64(c.Size))
			b = append(b, c.ID[:]...)
		}
		if len(b) > MaxPackIndexSize {
			return nil, invalidf("pack index larger than %d bytes", MaxPackIndexSize)
		}
	}
	return b, nil
}

// DecodePackIndex decodes and validates a pack index; any non-canonical
// encoding is rejected. The result does not alias b.
func DecodePackIndex(b []byte) (*PackIndex, error) {
	if len(b) > MaxPackIndexSize {
		return nil, invalidf("pack index of %d bytes exceeds %d", len(b), MaxPackIndexSize)
	}
	if !bytes.HasPrefix(b, []byte(packIndexMagic)) {
		return nil, invalidf("not a pack index: bad magic")
	}
	r := wireReader{b: b, off: len(packIndexMagic)}
	v, err := r.uvarint("pack index version")
	if err != nil {
		return nil, err
	}
	if v != packIndexVersion {
		return nil, invalidf("unsupported pack index version %d", v)
	}
	n, err := r.count(minFrameSize, "pack index frame count")
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, invalidf("pack index has no frames")
	}
	p := &PackIndex{Frames: make([]Frame, n)}
	for i := range p.Frames {
		if err := p.Frames[i].decode(&r); err != nil {
			return nil, prefixed(err, "pack index frame %d", i)
		}
	}
	if r.left() != 0 {
		return nil, invalidf("pack index: %d trailing bytes", r.left())
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	again, err := p.encodeValid()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, invalidf("pack index: non-canonical encoding (differs from its re-encoding at byte %d)",
			firstDiff(again, b))
	}
	return p, nil
}

func (f *Frame) decode(r *wireReader) error {
	enc, err := r.byte1("encoding")
	if err != nil {
		return err
	}
	f.Encoding = Encoding(enc)
	if f.Encoding != EncodingRaw && f.Encoding != EncodingZstd {
		return invalidf("unknown frame encoding %d", enc)
	}
	if f.StoredSize, err = r.uvarint("stored size"); err != nil {
		return err
	}
	if f.Digest, err = r.id("digest"); err != nil {
		return err
	}
	n, err := r.count(minChunkRefSize, "chunk count")
	if err != nil {
		return err
	}
	if n == 0 {
		return invalidf("frame has no chunks")
	}
	f.Chunks = make([]ChunkRef, n)
	for i := range f.Chunks {
		size, err := r.uvarint("chunk size")
		if err != nil {
			return prefixed(err, "chunk %d", i)
		}
		if size == 0 || size > math.MaxUint32 {
			return invalidf("chunk %d: size %d out of range", i, size)
		}
		f.Chunks[i].Size = uint32(size)
		if f.Chunks[i].ID, err = r.id("chunk id"); err != nil {
			return prefixed(err, "chunk %d", i)
		}
	}
	return nil
}
