package storeindex

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/oci2/oci2/format"
)

// Units are store-private: they need not be canonical, only valid frames
// (SPEC.md §5.2 encodings, read by pack.DecodeFrame). They hold megabytes of
// chunks, where a stronger level pays: measured on a tar of debian-build,
// 4 MiB blocks at SpeedBetterCompression are 11.6% smaller than 256 KiB
// blocks at SpeedDefault (the canonical frames), at about the same speed.
var unitEncoders = sync.Pool{New: func() any {
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),
		zstd.WithZeroFrames(false),
		zstd.WithSingleSegment(true))
	if err != nil {
		panic(fmt.Sprintf("storeindex: creating the zstd encoder: %v", err))
	}
	return e
}}

// encodeUnit compresses a unit's raw bytes, or keeps them raw when that is
// not larger (as frames do).
func encodeUnit(raw []byte) (format.Encoding, []byte) {
	e := unitEncoders.Get().(*zstd.Encoder)
	out := e.EncodeAll(raw, make([]byte, 0, len(raw)/2))
	unitEncoders.Put(e)
	if len(out) >= len(raw) {
		return format.EncodingRaw, raw
	}
	return format.EncodingZstd, bytes.Clone(out)
}

// MakeUnit encodes the raw bytes of chunks (concatenated, in order) as a
// unit: its frame and stored bytes, ready for WriteUnit.
func MakeUnit(chunks []format.ChunkRef, raw []byte) (format.Frame, []byte) {
	enc, stored := encodeUnit(raw)
	return format.Frame{Encoding: enc, StoredSize: uint64(len(stored)), Digest: format.Sum(stored),
		Chunks: append([]format.ChunkRef(nil), chunks...)}, stored
}
