package reader

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/chunkstore"
	"github.com/oci2/oci2/format"
)

// Pack is one pack of an image with its decoded index.
type Pack struct {
	Descriptor      ocispec.Descriptor // the pack blob
	IndexDescriptor ocispec.Descriptor // its pack index blob
	Index           *format.PackIndex
}

// Image is an opened, validated OCIv2 image manifest.
type Image struct {
	Descriptor ocispec.Descriptor // the manifest
	Manifest   ocispec.Manifest
	Config     ocispec.Image
	Root       format.ChunkID // root wrapper tree (SPEC.md §4.3)
	TreePacks  []Pack
	DataPacks  []Pack
}

// Open reads and validates the manifest desc points at, its config and all
// its pack indexes.
func Open(ctx context.Context, r chunkstore.Reader, desc ocispec.Descriptor) (*Image, error) {
	panic("TODO(H4)")
}

// Resolve finds the manifest for platform (nil: the host's platform, or the
// only one) from a ref name or a digest ("sha256:...") of an image index or
// manifest.
func Resolve(ctx context.Context, r chunkstore.Reader, refs chunkstore.Refs, nameOrDigest string,
	platform *ocispec.Platform) (ocispec.Descriptor, error) {
	panic("TODO(H4)")
}

// FrameSource fetches the stored bytes of frame i of pack p. Implementations
// need not verify: the ChunkReader checks the frame digest.
type FrameSource interface {
	Frame(ctx context.Context, p *Pack, i int) ([]byte, error)
}

// LocalFrames reads frames stored as blobs by their digest (a local store).
func LocalFrames(r chunkstore.Reader) FrameSource { panic("TODO(H4)") }

// PackRanges reads frames as byte ranges of pack blobs (a registry).
func PackRanges(r chunkstore.RangeReader) FrameSource { panic("TODO(H4)") }

// ChunkReader reads verified chunks and tree objects of one image. It is safe
// for concurrent use and caches recently decoded frames.
type ChunkReader struct {
	// TODO(H4)
}

// NewChunkReader indexes img's chunks by ID.
func NewChunkReader(img *Image, src FrameSource) *ChunkReader { panic("TODO(H4)") }

// ReadChunk returns a data or tree chunk's verified bytes.
func (r *ChunkReader) ReadChunk(ctx context.Context, id format.ChunkID) ([]byte, error) {
	panic("TODO(H4)")
}

// Tree reads and decodes a tree object.
func (r *ChunkReader) Tree(ctx context.Context, id format.ChunkID) (*format.Tree, error) {
	panic("TODO(H4)")
}

// Limits bound a walk (SPEC.md §7).
type Limits struct {
	MaxEntries int64
	MaxDepth   int
	MaxBytes   int64 // logical bytes of regular files
}

// DefaultLimits are the limits of SPEC.md §7.
var DefaultLimits = Limits{MaxEntries: 16 << 20, MaxDepth: 1024, MaxBytes: 1 << 40}

// WalkFunc receives every entry in canonical order. path is the slash path
// from the root ("" for the root wrapper's entry, which carries the root
// directory's metadata). Returning SkipDir for a directory skips its subtree.
type WalkFunc func(path string, e *format.Entry) error

// Walk visits the tree under root in canonical order, enforcing limits and
// hardlink validity (a hardlink must name a regular file visited before).
func Walk(ctx context.Context, r *ChunkReader, root format.ChunkID, limits Limits, fn WalkFunc) error {
	panic("TODO(H4)")
}
