package format

// Encoding is how a frame's bytes are stored (SPEC.md §5.2).
type Encoding uint8

const (
	// EncodingRaw stores the concatenated chunk bytes as they are.
	EncodingRaw Encoding = 0
	// EncodingZstd stores one zstd frame of the concatenated chunk bytes.
	EncodingZstd Encoding = 1
)

// ChunkRef names one chunk inside a frame.
type ChunkRef struct {
	ID   ChunkID
	Size uint32
}

// Frame is a run of consecutive chunks of a stream stored (compressed) together.
// Its stored bytes are the unit of range reads and of local storage.
type Frame struct {
	Encoding   Encoding
	StoredSize uint64
	// Digest is the sha256 of the stored bytes: the frame's blob digest in a
	// local store, and the check for a range read of a pack.
	Digest ChunkID
	Chunks []ChunkRef
}

// RawSize is the sum of the sizes of f's chunks.
func (f *Frame) RawSize() uint64 {
	var n uint64
	for _, c := range f.Chunks {
		n += uint64(c.Size)
	}
	return n
}

// PackIndex describes one pack: the pack's bytes are its frames' stored bytes
// concatenated in order, so each frame's offset is the sum of the stored sizes
// before it.
type PackIndex struct {
	Frames []Frame
}

// PackSize is the size of the pack the index describes.
func (p *PackIndex) PackSize() uint64 {
	var n uint64
	for i := range p.Frames {
		n += p.Frames[i].StoredSize
	}
	return n
}
