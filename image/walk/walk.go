package walk

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store"
)

// FetchFunc returns the blob desc names (an index or a manifest), verified
// against its digest. It should not read more than format.MaxManifestSize
// bytes; the walk refuses a longer blob.
type FetchFunc func(ctx context.Context, desc ocispec.Descriptor) ([]byte, error)

// BlobReader is the part of a store a walk reads from.
type BlobReader interface {
	ReadBlob(ctx context.Context, d digest.Digest, maxSize int64) ([]byte, error)
}

// FromStore fetches from a store (which verifies every blob it returns).
func FromStore(r BlobReader) FetchFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
		return r.ReadBlob(ctx, desc.Digest, format.MaxManifestSize)
	}
}

// Walker walks an image graph depth first from a root descriptor: each image
// index, then its entries; each manifest (image or attestation). It reads
// every index and manifest at most once per Walk and never reads the other
// blobs (configs, layers, packs): what to do with them is the Visit
// callback's.
type Walker struct {
	// Fetch reads an index or a manifest. Required.
	Fetch FetchFunc
	// Skip, when set, is asked before a descriptor is read; true leaves it
	// and everything under it out (the caller has seen it before).
	Skip func(desc ocispec.Descriptor) bool
	// Visit is called once for every node, children before parents (the
	// order a registry accepts them in): for an index or a manifest with
	// the decoded node, for a descriptor of any other media type with a
	// Node of Kind Other and no data.
	Visit func(ctx context.Context, n *Node) error
	// OnError, when set, is called when a node cannot be read, decoded or
	// visited, or is nested deeper than format.MaxIndexDepth; returning nil
	// leaves that node out and carries on with its siblings (a mark that
	// reports every broken blob). Without it the walk stops at the first
	// error.
	OnError func(desc ocispec.Descriptor, err error) error
	// MaxNodes, when over zero, bounds how many indexes and manifests one
	// Walk reads (an image from a registry).
	MaxNodes int
}

// Walk walks the graph under root. It returns ctx's error when cancelled,
// and otherwise the first error OnError returns (or the first error, without
// OnError).
func (w *Walker) Walk(ctx context.Context, root ocispec.Descriptor) error {
	s := &walkState{Walker: w, seen: map[digest.Digest]bool{}}
	return s.visit(ctx, root, 0)
}

type walkState struct {
	*Walker
	seen  map[digest.Digest]bool
	nodes int
}

func (s *walkState) visit(ctx context.Context, desc ocispec.Descriptor, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.seen[desc.Digest] || (s.Skip != nil && s.Skip(desc)) {
		return nil
	}
	s.seen[desc.Digest] = true
	if desc.MediaType != "" && KindOf(desc.MediaType) == Other {
		return s.fail(ctx, desc, s.Visit(ctx, &Node{Desc: desc, Kind: Other}))
	}
	n, err := s.read(ctx, desc, depth)
	if err != nil {
		return s.fail(ctx, desc, err)
	}
	if n.Index != nil {
		for _, m := range n.Index.Manifests {
			if err := s.visit(ctx, m, depth+1); err != nil {
				return err
			}
		}
	}
	return s.fail(ctx, desc, s.Visit(ctx, n))
}

// read checks the bounds of desc, then fetches and decodes it.
func (s *walkState) read(ctx context.Context, desc ocispec.Descriptor, depth int) (*Node, error) {
	if depth >= format.MaxIndexDepth {
		return nil, fmt.Errorf("%s: under %d nested image indexes (at most %d)", desc.Digest, depth, format.MaxIndexDepth-1)
	}
	if s.MaxNodes > 0 && s.nodes >= s.MaxNodes {
		return nil, fmt.Errorf("%s: more than %d manifests and indexes", desc.Digest, s.MaxNodes)
	}
	s.nodes++
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("descriptor %q: %w", desc.Digest, err)
	}
	if desc.Size > format.MaxManifestSize {
		return nil, fmt.Errorf("%s: size %d over the %d byte limit: %w", desc.Digest, desc.Size, format.MaxManifestSize, store.ErrTooLarge)
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("%s: negative size %d", desc.Digest, desc.Size)
	}
	b, err := s.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	if len(b) > format.MaxManifestSize {
		return nil, fmt.Errorf("%s: %d bytes, over the %d byte limit: %w", desc.Digest, len(b), format.MaxManifestSize, store.ErrTooLarge)
	}
	if desc.Size != 0 && int64(len(b)) != desc.Size {
		return nil, fmt.Errorf("%s: %d bytes, descriptor says %d: %w", desc.Digest, len(b), desc.Size, store.ErrSizeMismatch)
	}
	return Decode(desc, b)
}

// fail hands err (if any) to OnError; ctx's errors are never swallowed.
func (s *walkState) fail(ctx context.Context, desc ocispec.Descriptor, err error) error {
	if err == nil {
		return nil
	}
	if s.OnError == nil || ctx.Err() != nil {
		return err
	}
	return s.OnError(desc, err)
}
