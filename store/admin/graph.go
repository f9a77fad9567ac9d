package admin

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/walk"
	"github.com/oci2/oci2/store"
)

// blobProblem is a blob a ref reaches that could not be read or parsed.
type blobProblem struct {
	Blob digest.Digest
	Err  error
}

// graph is everything a set of refs reaches, as blob digest -> size. Meta
// holds indexes, manifests, configs, pack indexes and any other referenced
// blob except packs (which a local store does not keep: it keeps frames and
// units, SPEC.md §8);
// Packs holds pack descriptors, Frames the frames named by pack indexes.
type graph struct {
	Meta      map[digest.Digest]int64
	Packs     map[digest.Digest]int64
	Frames    map[digest.Digest]int64
	Defs      map[digest.Digest]*format.Frame // the frames of Frames, as pack indexes describe them
	Manifests []ocispec.Descriptor            // oci2 and other manifests, first occurrence order
	// Attestations are the attestation manifests of indexes (provenance,
	// SBOM: not images), with the blobs each references; their blobs are
	// in Meta, so gc keeps them with their image.
	Attestations []attestation
	Problems     []blobProblem
	merged       map[digest.Digest]bool // manifests merged in already
}

func newGraph() *graph {
	return &graph{
		Meta:   map[digest.Digest]int64{},
		Packs:  map[digest.Digest]int64{},
		Frames: map[digest.Digest]int64{},
		Defs:   map[digest.Digest]*format.Frame{},
		merged: map[digest.Digest]bool{},
	}
}

// has reports whether d is reached in any role.
func (g *graph) has(d digest.Digest) bool {
	_, m := g.Meta[d]
	_, p := g.Packs[d]
	_, f := g.Frames[d]
	return m || p || f
}

// manifestCache memoizes what one manifest reaches, so refs sharing images
// (tags, multi-platform indexes) read each pack index once.
type manifestCache map[digest.Digest]*graph

// walker reads the graph of refs from a store.
type walker struct {
	r     store.Reader
	cache manifestCache
}

func newWalker(r store.Reader) *walker { return &walker{r: r, cache: manifestCache{}} }

// ref returns the graph of one descriptor (an index or a manifest).
func (w *walker) ref(ctx context.Context, desc ocispec.Descriptor) *graph {
	g := newGraph()
	w.walk(ctx, g, desc)
	return g
}

// mergeManifest adds the graph of one manifest into g, once.
func (g *graph) mergeManifest(d digest.Digest, src *graph) {
	if g.merged[d] {
		return
	}
	g.merged[d] = true
	for k, n := range src.Meta {
		g.Meta[k] = n
	}
	for k, n := range src.Packs {
		g.Packs[k] = n
	}
	for k, n := range src.Frames {
		g.Frames[k] = n
	}
	for k, f := range src.Defs {
		g.Defs[k] = f
	}
	g.Manifests = append(g.Manifests, src.Manifests...)
	g.Attestations = append(g.Attestations, src.Attestations...)
	g.Problems = append(g.Problems, src.Problems...)
}

// walk adds what root reaches to g. A blob that cannot be read is a problem
// of g, and the walk carries on with its siblings, so that check reports
// every broken blob; what a manifest reaches is read once per walker.
func (w *walker) walk(ctx context.Context, g *graph, root ocispec.Descriptor) {
	gw := walk.Walker{
		Fetch: walk.FromStore(w.r),
		Skip: func(desc ocispec.Descriptor) bool {
			mg, ok := w.cache[desc.Digest]
			if ok {
				g.mergeManifest(desc.Digest, mg)
			}
			return ok
		},
		Visit: func(ctx context.Context, n *walk.Node) error {
			if n.Kind != walk.Manifest {
				// Indexes, and unknown media types: kept alive, not followed.
				g.Meta[n.Desc.Digest] = n.Desc.Size
				return nil
			}
			mg := newGraph()
			if walk.IsAttestation(n.Desc) {
				mg.attestation(n.Desc, n.Manifest)
			} else {
				w.manifest(ctx, mg, n.Desc, n.Manifest)
			}
			w.keep(g, n.Desc.Digest, mg)
			return nil
		},
		OnError: func(desc ocispec.Descriptor, err error) error {
			if walk.KindOf(desc.MediaType) != walk.Manifest {
				g.Meta[desc.Digest] = desc.Size
				g.Problems = append(g.Problems, blobProblem{desc.Digest, err})
				return nil
			}
			mg := newGraph()
			mg.Meta[desc.Digest] = desc.Size
			if !walk.IsAttestation(desc) {
				mg.Manifests = append(mg.Manifests, desc)
			}
			mg.Problems = append(mg.Problems, blobProblem{desc.Digest, err})
			w.keep(g, desc.Digest, mg)
			return nil
		},
	}
	if err := gw.Walk(ctx, root); err != nil {
		g.Problems = append(g.Problems, blobProblem{root.Digest, err})
	}
}

// keep caches the graph of manifest d and merges it into g.
func (w *walker) keep(g *graph, d digest.Digest, mg *graph) {
	w.cache[d] = mg
	g.mergeManifest(d, mg)
}

// readDesc reads the verified blob desc names and checks its size.
func readDesc(ctx context.Context, r store.Reader, desc ocispec.Descriptor, max int64) ([]byte, error) {
	if desc.Size > max {
		return nil, fmt.Errorf("blob %s: size %d over the limit %d: %w", desc.Digest, desc.Size, max, store.ErrTooLarge)
	}
	b, err := r.ReadBlob(ctx, desc.Digest, max)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != desc.Size {
		return nil, fmt.Errorf("blob %s: %d bytes, descriptor says %d: %w", desc.Digest, len(b), desc.Size, store.ErrSizeMismatch)
	}
	return b, nil
}

func (w *walker) manifest(ctx context.Context, g *graph, desc ocispec.Descriptor, m *ocispec.Manifest) {
	g.Meta[desc.Digest] = desc.Size
	g.Manifests = append(g.Manifests, desc)
	g.Meta[m.Config.Digest] = m.Config.Size
	for _, l := range m.Layers {
		switch l.MediaType {
		case format.MediaTypeTreePack, format.MediaTypeDataPack:
			g.Packs[l.Digest] = l.Size
		case format.MediaTypePackIndex:
			g.Meta[l.Digest] = l.Size
			w.packIndex(ctx, g, l)
		default:
			g.Meta[l.Digest] = l.Size
		}
	}
}

// attestation adds an attestation manifest and the blobs it references
// (config, in-toto statements), which are plain blobs, not packs.
func (g *graph) attestation(desc ocispec.Descriptor, m *ocispec.Manifest) {
	g.Meta[desc.Digest] = desc.Size
	a := attestation{Manifest: desc, Blobs: append([]ocispec.Descriptor{m.Config}, m.Layers...)}
	for _, b := range a.Blobs {
		g.Meta[b.Digest] = b.Size
	}
	g.Attestations = append(g.Attestations, a)
}

func (w *walker) packIndex(ctx context.Context, g *graph, desc ocispec.Descriptor) {
	b, err := readDesc(ctx, w.r, desc, format.MaxPackIndexSize)
	if err != nil {
		g.Problems = append(g.Problems, blobProblem{desc.Digest, err})
		return
	}
	idx, err := format.DecodePackIndex(b)
	if err != nil {
		g.Problems = append(g.Problems, blobProblem{desc.Digest, fmt.Errorf("pack index %s: %w", desc.Digest, err)})
		return
	}
	for i := range idx.Frames {
		f := &idx.Frames[i]
		g.Frames[f.Digest.Digest()] = int64(f.StoredSize)
		g.Defs[f.Digest.Digest()] = f
	}
}

// live returns the union of what every ref reaches, failing on the first
// blob that could not be read: deleting with an incomplete mark would lose
// data.
func live(ctx context.Context, r store.Reader, refs []store.Ref) (*graph, error) {
	w := newWalker(r)
	all := newGraph()
	for _, ref := range refs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w.walk(ctx, all, ref.Descriptor)
		if len(all.Problems) > 0 {
			p := all.Problems[0]
			return nil, fmt.Errorf("image %s: blob %s: %w", ref.Name, p.Blob, p.Err)
		}
	}
	return all, nil
}
