package reader

import (
	"context"
	"fmt"

	"github.com/oci2/oci2/format"
)

// ValidateTrees decodes every tree object of img and walks them as an
// unpack would, within limits: SPEC.md §4.2 (each tree valid), §4.3
// (hardlinks name a regular file that precedes them) and §7. It reads no
// file content. A store runs it before it names an image (pull, copy, push,
// tag), so that an image it names can always be listed, measured and
// unpacked; src supplies the tree frames (a store's frames, or a
// registry's packs).
func ValidateTrees(ctx context.Context, img *Image, src FrameSource, limits Limits) error {
	cr := NewChunkReader(img, src)
	var last string
	err := Walk(ctx, cr, img.Root, limits, func(path string, _ *format.Entry) error {
		last = path
		return nil
	})
	if err != nil {
		return fmt.Errorf("image %s: tree (walked to %q): %w", img.Descriptor.Digest, displayPath(last), err)
	}
	return nil
}
