package pack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store"
)

// encoderOptions are the pinned options of SPEC.md §5.2.
var encoderOptions = []zstd.EOption{
	zstd.WithEncoderLevel(zstd.SpeedDefault),
	zstd.WithEncoderConcurrency(1),
	zstd.WithEncoderCRC(false),
	zstd.WithZeroFrames(false),
	zstd.WithSingleSegment(true),
}

// encoders hold pinned encoders; EncodeAll resets an encoder's state on every
// call, so its output does not depend on what the encoder did before.
var encoders = newEncoderPool(0)

// smallEncoders hold the pinned encoders with their window cut to FrameMax,
// for frames no larger than it (all but single big tree objects). A frame
// that fits in the window never reaches its limit, so the bytes are the
// pinned encoder's (TestSmallWindowSameBytes); what changes is the history
// buffer each encoder allocates: window plus a block's worth, at least
// twice the window, 16 MiB with the default 8 MiB window against 2 MiB.
// A write whose two packer workers each hold an encoder paid 32 MiB of its
// heap for bytes it never had (bench/results/2026-12-03-warmcreate.md).
//
// Up to GOMAXPROCS of them (the packer's workers) outlive a GC: a
// sync.Pool drops what it holds after two, and a small create running six
// GCs in 0.15 s built four encoders (3.5 MiB each with their first
// history) where two did the work.
var smallEncoders = newEncoderPool(runtime.GOMAXPROCS(0), zstd.WithWindowSize(smallWindow))

// smallWindow is the window of smallEncoders: a power of two (zstd's
// rule) no smaller than FrameMax.
const smallWindow = format.FrameMax

// encoderPool keeps up to cap(kept) encoders across GCs, the rest in a
// sync.Pool.
type encoderPool struct {
	kept chan *zstd.Encoder
	pool sync.Pool
}

// encodersMade counts encoders built (a test hook).
var encodersMade atomic.Int64

func newEncoderPool(keep int, extra ...zstd.EOption) *encoderPool {
	opts := append(append([]zstd.EOption{}, encoderOptions...), extra...)
	p := &encoderPool{kept: make(chan *zstd.Encoder, keep)}
	p.pool.New = func() any {
		e, err := zstd.NewWriter(nil, opts...)
		if err != nil {
			panic(fmt.Sprintf("pack: creating the zstd encoder: %v", err))
		}
		encodersMade.Add(1)
		return e
	}
	return p
}

func (p *encoderPool) get() *zstd.Encoder {
	select {
	case e := <-p.kept:
		return e
	default:
		return p.pool.Get().(*zstd.Encoder)
	}
}

func (p *encoderPool) put(e *zstd.Encoder) {
	select {
	case p.kept <- e:
	default:
		p.pool.Put(e)
	}
}

// encoderFor is the pool whose encoders encode n raw bytes.
func encoderFor(n int) *encoderPool {
	if n <= smallWindow {
		return smallEncoders
	}
	return encoders
}

// scratch buffers receive encoder output before it is copied to its exact size.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

var decoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderMaxMemory(format.MaxFrameRawSize),
		zstd.WithDecoderMaxWindow(format.MaxFrameRawSize),
		zstd.WithDecodeAllCapLimit(true))
})

var frameKeyPrefix = []byte("oci2-frame-v1\x00" + EncoderID + "\x00")

// FrameKey is the key a store keeps a frame under (SPEC.md §8).
func FrameKey(chunks []format.ChunkRef) format.ChunkID {
	h := sha256.New()
	h.Write(frameKeyPrefix)
	for i := range chunks {
		h.Write(chunks[i].ID[:])
	}
	var id format.ChunkID
	h.Sum(id[:0])
	return id
}

// EncodeFrame compresses a frame's raw bytes with the pinned encoder, or keeps
// them raw when that is not larger. A raw result is raw itself; a zstd result
// is a new slice of its exact size.
func EncodeFrame(raw []byte) (format.Encoding, []byte) {
	pool := encoderFor(len(raw))
	e := pool.get()
	buf := scratch.Get().(*[]byte)
	out := e.EncodeAll(raw, (*buf)[:0])
	pool.put(e)
	defer func() {
		*buf = out[:0]
		scratch.Put(buf)
	}()
	if len(out) >= len(raw) {
		return format.EncodingRaw, raw
	}
	return format.EncodingZstd, bytes.Clone(out)
}

// DecodeFrame verifies stored against f.Digest, decodes it bounded by
// f.RawSize() and returns the raw bytes; with verifyChunks it also checks
// every chunk ID. The result of a raw frame is stored itself.
//
// Digest mismatches wrap store.ErrDigestMismatch, a wrong stored size
// store.ErrSizeMismatch; frames that do not decode to exactly their raw
// size (zstd bombs included) wrap format.ErrInvalid.
func DecodeFrame(f *format.Frame, stored []byte, verifyChunks bool) ([]byte, error) {
	return DecodeFrameBuf(f, stored, verifyChunks, nil)
}

// DecodeFrameBuf is DecodeFrame decoding a zstd frame into buf when buf
// can hold its raw bytes (the result then shares buf's array), for callers
// that copy the raw bytes out and decode many frames.
func DecodeFrameBuf(f *format.Frame, stored []byte, verifyChunks bool, buf []byte) ([]byte, error) {
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("frame %s: %w", f.Digest, err)
	}
	if uint64(len(stored)) != f.StoredSize {
		return nil, fmt.Errorf("frame %s: %d stored bytes, index says %d: %w",
			f.Digest, len(stored), f.StoredSize, store.ErrSizeMismatch)
	}
	if got := format.Sum(stored); got != f.Digest {
		return nil, fmt.Errorf("frame %s: stored bytes hash to %s: %w", f.Digest, got, store.ErrDigestMismatch)
	}
	rawSize := f.RawSize()
	raw := stored
	if f.Encoding == format.EncodingZstd {
		var err error
		if raw, err = decodeZstd(stored, rawSize, buf); err != nil {
			return nil, fmt.Errorf("frame %s: %w", f.Digest, err)
		}
	}
	if verifyChunks {
		var off uint64
		for i, c := range f.Chunks {
			if got := format.Sum(raw[off : off+uint64(c.Size)]); got != c.ID {
				return nil, fmt.Errorf("frame %s: chunk %d %s: bytes hash to %s: %w",
					f.Digest, i, c.ID, got, store.ErrDigestMismatch)
			}
			off += uint64(c.Size)
		}
	}
	return raw, nil
}

// invalid is a frame that does not decode to what its index says.
type invalid struct{ msg string }

func (e *invalid) Error() string { return e.msg }
func (e *invalid) Unwrap() error { return format.ErrInvalid }

func invalidf(f string, args ...any) error { return &invalid{msg: fmt.Sprintf(f, args...)} }

func decodeZstd(stored []byte, rawSize uint64, buf []byte) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(stored); err != nil {
		return nil, invalidf("zstd frame header: %v", err)
	}
	if h.Skippable {
		return nil, invalidf("zstd frame is a skippable frame")
	}
	if h.HasFCS && h.FrameContentSize != rawSize {
		return nil, invalidf("zstd frame declares %d content bytes, index says raw size %d (decompression bomb?)",
			h.FrameContentSize, rawSize)
	}
	dec, err := decoder()
	if err != nil {
		return nil, fmt.Errorf("creating zstd decoder: %w", err)
	}
	// The decoder stops at cap(dst): rawSize, itself at most MaxFrameRawSize.
	dst := buf[:0:min(uint64(cap(buf)), rawSize)]
	if uint64(cap(dst)) < rawSize {
		dst = make([]byte, 0, rawSize)
	}
	raw, err := dec.DecodeAll(stored, dst)
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded):
		return nil, invalidf("zstd frame decodes to more than its raw size %d (decompression bomb): %v", rawSize, err)
	case err != nil:
		return nil, invalidf("decoding zstd frame: %v", err)
	case uint64(len(raw)) != rawSize:
		return nil, invalidf("zstd frame decodes to %d bytes, index says raw size %d", len(raw), rawSize)
	}
	return raw, nil
}

// WritePack writes the pack described by idx to w, getting each frame's stored
// bytes from frame (which must verify them).
func WritePack(ctx context.Context, w io.Writer, idx *format.PackIndex,
	frame func(ctx context.Context, f *format.Frame) ([]byte, error)) error {
	for i := range idx.Frames {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := &idx.Frames[i]
		b, err := frame(ctx, f)
		if err != nil {
			return fmt.Errorf("frame %d %s: %w", i, f.Digest, err)
		}
		if uint64(len(b)) != f.StoredSize {
			return fmt.Errorf("frame %d %s: %d stored bytes, index says %d: %w",
				i, f.Digest, len(b), f.StoredSize, store.ErrSizeMismatch)
		}
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("writing pack: %w", err)
		}
	}
	return nil
}
