package exporter

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/chunkstore"
	"github.com/oci2/oci2/reader"
)

// errStaleIndex means the frame index named frames the store no longer
// has: another process (`oci2 gc`, `oci2 rm` + gc) collected the store
// while the daemon ran, and the writer reused frames it deleted.
var errStaleIndex = errors.New("the store's frame index is stale")

// checkFrames opens the manifest just written and stats every frame its
// pack indexes name (a stat per frame: milliseconds for thousands), so an
// image that reuses a frame deleted behind the daemon's back is never
// named. It returns the opened image for the files cache.
func checkFrames(ctx context.Context, st chunkstore.Reader, desc ocispec.Descriptor) (*reader.Image, error) {
	img, err := reader.Open(ctx, st, desc)
	if err != nil {
		return nil, fmt.Errorf("reading back %s: %w", desc.Digest, err)
	}
	for _, packs := range [][]reader.Pack{img.TreePacks, img.DataPacks} {
		for _, p := range packs {
			for _, f := range p.Index.Frames {
				if _, err := st.Stat(ctx, f.Digest.Digest()); err != nil {
					if errors.Is(err, chunkstore.ErrNotFound) {
						return nil, fmt.Errorf("frame %s: %w", f.Digest, errStaleIndex)
					}
					return nil, err
				}
			}
		}
	}
	return img, nil
}

// invalidate drops the frame index; the next export rebuilds it.
func (s *State) invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index = nil
}
