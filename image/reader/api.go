package reader

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store"
)

// Pack is one pack of an image with its decoded index.
type Pack struct {
	Descriptor      ocispec.Descriptor // the pack blob
	IndexDescriptor ocispec.Descriptor // its pack index blob
	Index           *format.PackIndex

	offsets []uint64 // frame offsets, filled by Open (computed lazily otherwise)
}

// FrameOffset returns the offset of frame i in the pack: the sum of the
// stored sizes of the frames before it.
func (p *Pack) FrameOffset(i int) uint64 {
	if len(p.offsets) == len(p.Index.Frames) {
		return p.offsets[i]
	}
	var off uint64
	for j := 0; j < i; j++ {
		off += p.Index.Frames[j].StoredSize
	}
	return off
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
// its pack indexes. desc.Size may be 0 when unknown; any other size must be
// the manifest's.
func Open(ctx context.Context, r store.Reader, desc ocispec.Descriptor) (*Image, error) {
	return open(ctx, r, desc)
}

// Resolve finds the manifest for platform (nil: the only one, or else the
// host's platform) from a ref name or a digest ("sha256:...") of an image
// index or manifest. Names are looked up in refs as given (callers normalize
// them, see package refname).
func Resolve(ctx context.Context, r store.Reader, refs store.Refs, nameOrDigest string,
	platform *ocispec.Platform) (ocispec.Descriptor, error) {
	return resolve(ctx, r, refs, nameOrDigest, platform)
}

// FrameSource fetches the stored bytes of frame i of pack p. Implementations
// need not verify: the ChunkReader checks the frame digest.
type FrameSource interface {
	Frame(ctx context.Context, p *Pack, i int) ([]byte, error)
}

// ChunkSource is an optional interface of a FrameSource that holds some
// frames only as chunks kept in other blobs (a local store's virtual frames,
// SPEC.md §8). Its Frame would have to re-encode such a frame; a ChunkReader
// reads the frame's chunks with ReadChunk instead, verifying each.
type ChunkSource interface {
	// Virtual reports whether frame i of p is held only as chunks.
	Virtual(ctx context.Context, p *Pack, i int) (bool, error)
	// ReadChunk returns the bytes of a chunk of a virtual frame (the caller
	// verifies them; it may keep and modify them).
	ReadChunk(ctx context.Context, id format.ChunkID) ([]byte, error)
}

// LocalFrames reads frames stored as blobs by their digest (a local store).
func LocalFrames(r store.Reader) FrameSource { return localFrames{r} }

// PackRanges reads frames as byte ranges of pack blobs (a registry).
func PackRanges(r store.RangeReader) FrameSource { return packRanges{r} }

// Limits bound a walk (SPEC.md §7). A zero field means its default.
type Limits struct {
	MaxEntries int64
	MaxDepth   int
	MaxBytes   int64 // logical bytes of regular files
}

// DefaultLimits are the limits of SPEC.md §7.
var DefaultLimits = Limits{MaxEntries: format.MaxImageEntries, MaxDepth: format.MaxTreeDepth, MaxBytes: format.MaxImageBytes}

// WalkFunc receives every entry in canonical order. path is the slash path
// from the root ("" for the root wrapper's entry, which carries the root
// directory's metadata). Returning SkipDir for a directory skips its subtree;
// for any other entry it is ignored. e points into a cached tree: callers
// must not modify it or keep it after the walk.
type WalkFunc func(path string, e *format.Entry) error

// Walk visits the tree under root in canonical order, enforcing limits and
// hardlink validity (a hardlink must name a regular file visited before).
func Walk(ctx context.Context, r *ChunkReader, root format.ChunkID, limits Limits, fn WalkFunc) error {
	return WalkPrePost(ctx, r, root, limits, fn, nil)
}

// WalkPrePost is Walk that also calls post for every directory (the root
// wrapper's entry included) after its subtree, so callers can apply a
// directory's metadata after its content. post is not called for a directory
// whose pre call returned SkipDir, nor after an error. post may be nil.
func WalkPrePost(ctx context.Context, r *ChunkReader, root format.ChunkID, limits Limits,
	pre, post WalkFunc) error {
	w := newWalker(ctx, r, limits, pre, post)
	return w.run(root)
}
