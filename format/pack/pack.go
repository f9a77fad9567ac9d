package pack

import (
	"context"

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
// A nil Options.Store stores nothing and reuses nothing.
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
	// Workers look up, fetch, compress and put frames in parallel (default
	// GOMAXPROCS). At most 2*Workers closed frames are in flight.
	Workers int
	// OnFrame is called once per frame, in stream order, from one packer
	// goroutine, after the frame's PutFrame returned.
	OnFrame func(FrameEvent)
}
