package index

import (
	"fmt"

	"github.com/klauspost/compress/zstd"

	"github.com/oci2/oci2/format"
)

// Units are store-private: they need not be canonical, only valid frames
// (SPEC.md §5.2 encodings, read by pack.DecodeFrame). They hold megabytes of
// chunks, where a stronger level pays (SPEC.md §8.1's rationale has the
// measurement).
var unitEncoders = make(chan *zstd.Encoder, maxSeals+1)

func newUnitEncoder() *zstd.Encoder {
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),
		zstd.WithZeroFrames(false),
		zstd.WithSingleSegment(true),
		// History of the input plus a block, not twice the window.
		zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic(fmt.Sprintf("index: creating the zstd encoder: %v", err))
	}
	return e
}

// compressUnit compresses a unit's raw bytes. A few encoders are kept for
// reuse: each holds history buffers of the size of the units it compressed.
func compressUnit(raw []byte) []byte {
	var e *zstd.Encoder
	select {
	case e = <-unitEncoders:
	default:
		e = newUnitEncoder()
	}
	out := e.EncodeAll(raw, make([]byte, 0, len(raw)/2))
	select {
	case unitEncoders <- e:
	default:
	}
	return out
}

// MakeUnit encodes the raw bytes of chunks (concatenated, in order) as a
// unit: its frame and stored bytes, ready for WriteUnit. The unit describes
// itself where it can (see withTrailer), so its descriptor can be rebuilt.
func MakeUnit(chunks []format.ChunkRef, raw []byte) (format.Frame, []byte) {
	zst := compressUnit(raw)
	enc, stored := format.EncodingZstd, zst
	if withT, ok := withTrailer(zst, chunks, uint64(len(raw))); ok {
		stored = withT
	} else if len(zst) >= len(raw) {
		enc, stored = format.EncodingRaw, raw // as frames do
	}
	return format.Frame{Encoding: enc, StoredSize: uint64(len(stored)), Digest: format.Sum(stored),
		Chunks: append([]format.ChunkRef(nil), chunks...)}, stored
}
