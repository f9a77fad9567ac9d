package exporter

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
)

// errStaleIndex means the frame index named frames the store no longer
// has: another process (`oci2 gc`, `oci2 rm` + gc) collected the store
// while the daemon ran, and the writer reused frames it deleted.
var errStaleIndex = errors.New("the store's frame index is stale")

// checkFrames opens the manifest just written and stats every frame its
// pack indexes name (a stat per frame: milliseconds for thousands), and for
// a virtual frame (SPEC.md §8) every blob idx says holds its chunks, so an
// image that reuses a frame or unit deleted behind the daemon's back is
// never named. It returns the opened image for the files cache.
func checkFrames(ctx context.Context, st store.Reader, idx *index.Index, desc ocispec.Descriptor) (*reader.Image, error) {
	img, err := reader.Open(ctx, st, desc)
	if err != nil {
		return nil, fmt.Errorf("reading back %s: %w", desc.Digest, err)
	}
	holders := map[format.ChunkID]bool{} // blobs found present
	for _, packs := range [][]reader.Pack{img.TreePacks, img.DataPacks} {
		for _, p := range packs {
			for _, f := range p.Index.Frames {
				_, err := st.Stat(ctx, f.Digest.Digest())
				if errors.Is(err, store.ErrNotFound) {
					err = checkHolders(ctx, st, idx, &f, holders)
				}
				if err != nil {
					return nil, err
				}
			}
		}
	}
	return img, nil
}

// checkHolders stats the blobs holding the chunks of virtual frame f.
func checkHolders(ctx context.Context, st store.Reader, idx *index.Index, f *format.Frame, seen map[format.ChunkID]bool) error {
	blobs, ok := idx.Holders(f.Chunks)
	if !ok {
		return fmt.Errorf("frame %s: %w", f.Digest, errStaleIndex)
	}
	for _, b := range blobs {
		if seen[b] {
			continue
		}
		if _, err := st.Stat(ctx, b.Digest()); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("frame %s: blob %s: %w", f.Digest, b, errStaleIndex)
			}
			return err
		}
		seen[b] = true
	}
	return nil
}

// writeRetrying runs write with the refreshed frame index. When write
// finds the index stale it runs it once more with an index built again:
// written blobs stay (they are content-addressed) and the rebuilt index
// knows which frames really are there. The second attempt reuses what the
// first stored, so the stats count both (addStored).
func (s *State) writeRetrying(ctx context.Context, write func(context.Context, *index.Index) ([]ocispec.Descriptor, []PlatformStats, error)) ([]ocispec.Descriptor, []PlatformStats, error) {
	attempt := func() ([]ocispec.Descriptor, []PlatformStats, error) {
		idx, release, err := s.acquire(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("oci2 exporter: %w", err)
		}
		defer release()
		return write(ctx, idx)
	}
	manifests, stats, err := attempt()
	if errors.Is(err, errStaleIndex) {
		progressLog(ctx, "the store was collected by another process: indexing it again")
		s.invalidate()
		first := stats
		manifests, stats, err = attempt()
		addStored(stats, first)
	}
	return manifests, stats, err
}

// addStored adds to each platform's stats the frames and bytes an earlier,
// failed attempt of the same export stored (platforms in the same order).
func addStored(stats, earlier []PlatformStats) {
	for i := range min(len(stats), len(earlier)) {
		stats[i].Stats.FramesNew += earlier[i].Stats.FramesNew
		stats[i].Stats.StoredNew += earlier[i].Stats.StoredNew
	}
}

// writeChecked writes root's image manifest with idx and checks the frames
// it names (checkFrames). A failed check returns the result too: what the
// write stored counts in the export's stats.
func writeChecked(ctx context.Context, st writer.Store, idx *index.Index, root *writer.Node, opts writer.Options) (*writer.Result, *reader.Image, error) {
	opts.FrameIndex = idx
	res, err := writer.Write(ctx, st, root, opts)
	if err != nil {
		return nil, nil, err
	}
	img, err := checkFrames(ctx, st, idx, res.Manifest)
	if err != nil {
		return res, nil, err
	}
	return res, img, nil
}

// invalidate drops the frame index; the next export rebuilds it.
func (s *State) invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index = nil
}
