package reader

import "errors"

// SkipDir, returned by a WalkFunc for a directory, skips its subtree.
var SkipDir = errors.New("skip this directory")

// Error categories, checked with errors.Is.
var (
	// ErrNotOCI2 is a manifest without the org.oci2.format annotation (an
	// ordinary OCI image, for instance).
	ErrNotOCI2 = errors.New("not an oci2 image")
	// ErrUnsupportedFormat is an oci2 image of a format version this reader
	// does not know.
	ErrUnsupportedFormat = errors.New("unsupported format version")
	// ErrInvalidImage is a manifest, config, pack index or tree that breaks
	// the format's rules.
	ErrInvalidImage = errors.New("invalid image")
	// ErrLimit is an image exceeding a walk limit (SPEC.md §7).
	ErrLimit = errors.New("image exceeds limit")
	// ErrNoPlatform is an image index without a manifest for the platform.
	ErrNoPlatform = errors.New("no manifest for platform")
	// ErrChunkNotFound is a chunk that no pack of the image contains.
	ErrChunkNotFound = errors.New("chunk not in image")
)
