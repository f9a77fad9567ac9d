package pack

import (
	"context"
	"io"

	"github.com/oci2/oci2/format"
)

// EncoderID names the pinned frame encoder (SPEC.md §5.2). It is part of every
// frame key, so frames made by another encoder are never reused.
const EncoderID = "zstd/klauspost-1.20.4/l3"

// Chunk is one chunk of a stream. Data may be nil when the caller knows the
// chunk from earlier work; the Packer then asks Options.Fetch for it only if
// the chunk's frame is not in the store already.
type Chunk struct {
	ID   format.ChunkID
	Size uint32
	Data []byte
}

// FrameStore is what the Packer needs of a store.
type FrameStore interface {
	// LookupFrame returns the frame stored under key, if any.
	LookupFrame(ctx context.Context, key format.ChunkID) (format.Frame, bool, error)
	// PutFrame stores a new frame's stored bytes (idempotent) and remembers key.
	PutFrame(ctx context.Context, key format.ChunkID, f format.Frame, stored []byte) error
}

// FrameEvent reports one closed frame, for progress and stats.
type FrameEvent struct {
	Frame  format.Frame
	Reused bool // found in the store: not compressed, not written
}

// Options configure a Packer.
type Options struct {
	Store FrameStore
	// Fetch returns the bytes of a chunk added with nil Data.
	Fetch func(ctx context.Context, id format.ChunkID) ([]byte, error)
	// Workers compress frames in parallel (default GOMAXPROCS).
	Workers int
	// OnFrame is called once per frame, in stream order.
	OnFrame func(FrameEvent)
}

// Packer cuts one stream into frames and packs. Add chunks in stream order,
// then Finish. Duplicate chunk IDs within the stream are skipped.
type Packer struct {
	// TODO(H1)
}

// NewPacker starts a packer; its workers stop at Finish or when ctx ends.
func NewPacker(ctx context.Context, opts Options) *Packer { panic("TODO(H1)") }

// Add appends a chunk to the stream. The Packer keeps Data (callers must not
// reuse the slice).
func (p *Packer) Add(c Chunk) error { panic("TODO(H1)") }

// Finish closes the stream and returns its packs in order.
func (p *Packer) Finish() ([]format.PackIndex, error) { panic("TODO(H1)") }

// FrameKey is the key a store keeps a frame under (SPEC.md §8).
func FrameKey(chunks []format.ChunkRef) format.ChunkID { panic("TODO(H1)") }

// EncodeFrame compresses a frame's raw bytes with the pinned encoder, or keeps
// them raw when that is not larger.
func EncodeFrame(raw []byte) (format.Encoding, []byte) { panic("TODO(H1)") }

// DecodeFrame verifies stored against f.Digest, decodes it bounded by
// f.RawSize() and returns the raw bytes; with verifyChunks it also checks
// every chunk ID.
func DecodeFrame(f *format.Frame, stored []byte, verifyChunks bool) ([]byte, error) {
	panic("TODO(H1)")
}

// WritePack writes the pack described by idx to w, getting each frame's stored
// bytes from frame (which must verify them).
func WritePack(ctx context.Context, w io.Writer, idx *format.PackIndex,
	frame func(ctx context.Context, f *format.Frame) ([]byte, error)) error {
	panic("TODO(H1)")
}
