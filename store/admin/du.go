package admin

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/framesource"
)

// DUStore is what DU needs of a store (units: where the chunks of virtual
// frames are).
type DUStore interface {
	store.Reader
	store.Lister
	store.Refs
	store.Units
	store.RootLister
	store.IndexHome
}

// ImageUsage is the space one ref accounts for. Stored bytes are its frames
// plus its metadata blobs (index, manifests, configs, pack indexes); unique
// bytes are the part no other ref reaches, shared bytes the rest.
type ImageUsage struct {
	Name         string        `json:"name"`
	Digest       digest.Digest `json:"digest"`
	LogicalBytes int64         `json:"logical_bytes"`
	StoredBytes  int64         `json:"stored_bytes"`
	UniqueBytes  int64         `json:"unique_bytes"`
	SharedBytes  int64         `json:"shared_bytes"`
	// Problem, when not empty, is why the image is broken (a blob it
	// reaches is missing or invalid, or its trees break the format): its
	// figures count only what could be read.
	Problem string `json:"problem,omitempty"`
}

// Usage is the space of a whole store. LogicalBytes sums the images' logical
// bytes (what unpacking every image would write); StoredBytes is the size of
// every blob in the store, and UnreachableBytes the part of it no ref reaches
// (what GC would free).
type Usage struct {
	Images           []ImageUsage `json:"images"`
	LogicalBytes     int64        `json:"logical_bytes"`
	StoredBytes      int64        `json:"stored_bytes"`
	Blobs            int64        `json:"blobs"`
	ReachableBytes   int64        `json:"reachable_bytes"`
	UnreachableBytes int64        `json:"unreachable_bytes"`
}

// DU computes the space used by each image and by the whole store. Logical
// sizes come from walking each image's tree once per distinct manifest.
//
// An image's stored bytes are the real blobs it needs: its metadata, its
// frames whose blob is present and, for its virtual frames (SPEC.md §8), the
// units holding their chunks (chosen as GC would for that image alone).
func DU(ctx context.Context, st DUStore) (*Usage, error) {
	refs, err := st.ListRefs(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing refs: %w", err)
	}
	present, err := presentBlobs(ctx, st)
	if err != nil {
		return nil, err
	}
	units, err := loadUnits(ctx, st, present)
	if err != nil {
		return nil, err
	}
	w := newWalker(st)
	uses := make([]map[digest.Digest]int64, len(refs)) // blobs each ref needs
	owners := map[digest.Digest]int{}                  // blob -> number of refs needing it
	var manifests [][]ocispec.Descriptor
	problems := make([]string, len(refs))
	for i, ref := range refs {
		g := newGraph()
		w.walk(ctx, g, ref.Descriptor)
		if len(g.Problems) > 0 {
			p := g.Problems[0]
			problems[i] = fmt.Sprintf("blob %s: %v", p.Blob, p.Err)
		}
		uses[i] = imageBlobs(g, present, units)
		manifests = append(manifests, g.Manifests)
		for d := range uses[i] {
			owners[d]++
		}
	}

	// What entries that are not refs reach is reachable too (GC keeps it),
	// though no image row shows it.
	extra, err := extraRoots(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("listing refs: %w", err)
	}
	for _, x := range extra {
		g := newGraph()
		w.walk(ctx, g, x.Descriptor)
		for d := range imageBlobs(g, present, units) {
			if _, ok := owners[d]; !ok {
				owners[d] = 0
			}
		}
	}

	u := &Usage{Images: make([]ImageUsage, 0, len(refs))}
	src := framesource.New(st, nil)
	logical := map[digest.Digest]int64{} // per manifest
	for i, ref := range refs {
		iu := ImageUsage{Name: ref.Name, Digest: ref.Descriptor.Digest, Problem: problems[i]}
		for d, n := range uses[i] {
			iu.StoredBytes += n
			if owners[d] == 1 {
				iu.UniqueBytes += n
			}
		}
		iu.SharedBytes = iu.StoredBytes - iu.UniqueBytes
		for _, md := range manifests[i] {
			n, ok := logical[md.Digest]
			if !ok {
				if n, err = logicalBytes(ctx, st, src, md); err != nil {
					if ctx.Err() != nil {
						return nil, ctx.Err()
					}
					// One broken image must not hide the others: it is
					// listed with its problem.
					if iu.Problem == "" {
						iu.Problem = err.Error()
					}
					continue
				}
				logical[md.Digest] = n
			}
			iu.LogicalBytes += n
		}
		u.LogicalBytes += iu.LogicalBytes
		u.Images = append(u.Images, iu)
	}

	for d, n := range present {
		u.Blobs++
		u.StoredBytes += n
		if _, ok := owners[d]; ok {
			u.ReachableBytes += n
		} else {
			u.UnreachableBytes += n
		}
	}
	return u, nil
}

// imageBlobs returns the blobs one ref's graph needs with their sizes:
// metadata (descriptor sizes), present frames, and units for its virtual
// frames.
func imageBlobs(g *graph, present map[digest.Digest]int64, units *unitSet) map[digest.Digest]int64 {
	out := map[digest.Digest]int64{}
	for d, n := range g.Meta {
		out[d] = n
	}
	for d := range g.Frames {
		if n, ok := present[d]; ok {
			out[d] = n
		}
	}
	chosen, _ := units.cover(virtualNeed(g, present), nil)
	for i := range chosen {
		d := units.units[i].Digest.Digest()
		out[d] = present[d]
	}
	return out
}

// LogicalBytes opens the oci2 image manifest desc and sums the sizes of its
// regular files (hardlinked files once), walking the tree within
// reader.DefaultLimits.
func LogicalBytes(ctx context.Context, r framesource.Store, desc ocispec.Descriptor) (int64, error) {
	return logicalBytes(ctx, r, framesource.New(r, nil), desc)
}

func logicalBytes(ctx context.Context, r store.Reader, src *framesource.Source, desc ocispec.Descriptor) (int64, error) {
	img, err := reader.Open(ctx, r, desc)
	if err != nil {
		return 0, err
	}
	cr := reader.NewChunkReader(img, src)
	var n int64
	err = reader.Walk(ctx, cr, img.Root, reader.DefaultLimits, func(path string, e *format.Entry) error {
		if e.Type == format.TypeReg {
			n += int64(e.Size)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("walking %s: %w", desc.Digest, err)
	}
	return n, nil
}
