package transfer

import (
	"context"
	"errors"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store"
)

// validateTrees walks the trees of every image (reader.ValidateTrees within
// SPEC.md §7's limits) reading tree frames from src: an image that breaks
// the format is neither named by a pull nor sent by a push or copy.
func validateTrees(ctx context.Context, images []*reader.Image, src reader.FrameSource) error {
	for _, img := range images {
		if err := reader.ValidateTrees(ctx, img, src, reader.DefaultLimits); err != nil {
			return err
		}
	}
	return nil
}

// openImages opens the oci2 image manifests of g from r (configs and pack
// indexes read through it); manifests that are not oci2 images are skipped.
func openImages(ctx context.Context, r store.Reader, g *graph) ([]*reader.Image, error) {
	var images []*reader.Image
	for _, n := range g.nodes {
		if !isManifest(n.desc.MediaType) {
			continue
		}
		img, err := reader.Open(ctx, r, n.desc)
		if errors.Is(err, reader.ErrNotOCI2) {
			continue
		}
		if err != nil {
			return nil, err
		}
		images = append(images, img)
	}
	return images, nil
}
