package admin

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store/framesource"
)

// ValidateImage reports the first thing that makes the image desc names
// unusable: a blob it reaches that is missing or does not parse, a manifest
// reader.Open rejects, or a tree breaking SPEC.md §4.2, §4.3 or §7
// (reader.ValidateTrees). Manifests that are not oci2 images (attestations)
// are not walked. It reads tree frames, never file content.
func ValidateImage(ctx context.Context, st framesource.Store, desc ocispec.Descriptor) error {
	g := newWalker(st).ref(ctx, desc)
	if len(g.Problems) > 0 {
		p := g.Problems[0]
		return fmt.Errorf("blob %s: %w", p.Blob, p.Err)
	}
	src := framesource.New(st, nil)
	for _, m := range g.Manifests {
		img, err := reader.Open(ctx, st, m)
		if errors.Is(err, reader.ErrNotOCI2) {
			continue
		}
		if err != nil {
			return fmt.Errorf("manifest %s: %w", m.Digest, err)
		}
		if err := reader.ValidateTrees(ctx, img, src, reader.DefaultLimits); err != nil {
			return err
		}
	}
	return nil
}
