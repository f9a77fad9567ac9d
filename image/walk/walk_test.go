package walk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/walk"
	"github.com/oci2/oci2/store"
)

// blobs is a content-addressed map that counts reads.
type blobs struct {
	m     map[digest.Digest][]byte
	reads map[digest.Digest]int
}

func newBlobs() *blobs {
	return &blobs{m: map[digest.Digest][]byte{}, reads: map[digest.Digest]int{}}
}

// put stores v as JSON and returns its descriptor with media type mt.
func (b *blobs) put(t *testing.T, mt string, v any) ocispec.Descriptor {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(data)
	b.m[d] = data
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(data))}
}

func (b *blobs) fetch(_ context.Context, desc ocispec.Descriptor) ([]byte, error) {
	b.reads[desc.Digest]++
	data, ok := b.m[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, store.ErrNotFound)
	}
	return data, nil
}

func blob(s string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: format.MediaTypeDataPack, Digest: digest.FromString(s), Size: int64(len(s))}
}

func manifest(mt string, layers ...ocispec.Descriptor) ocispec.Manifest {
	m := ocispec.Manifest{MediaType: mt, Config: blob("config"), Layers: layers}
	m.SchemaVersion = 2
	return m
}

func index(mt string, ms ...ocispec.Descriptor) ocispec.Index {
	idx := ocispec.Index{MediaType: mt, Manifests: ms}
	idx.SchemaVersion = 2
	return idx
}

// visits records the nodes a walk visits, in order.
type visits []string

func (v *visits) visit(names map[digest.Digest]string) func(context.Context, *walk.Node) error {
	return func(_ context.Context, n *walk.Node) error {
		*v = append(*v, fmt.Sprintf("%s:%d", names[n.Desc.Digest], n.Kind))
		return nil
	}
}

// TestWalkOrder: OCI and Docker types, an attestation and an unknown blob;
// children are visited before parents, each node once, each index or
// manifest read once, other blobs never read.
func TestWalkOrder(t *testing.T) {
	b := newBlobs()
	m1 := b.put(t, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest, blob("l1")))
	m2 := b.put(t, format.MediaTypeDockerManifest, manifest(format.MediaTypeDockerManifest, blob("l2")))
	list := b.put(t, format.MediaTypeDockerList, index(format.MediaTypeDockerList, m1, m2))
	att := b.put(t, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest, blob("intoto")))
	att.Annotations = map[string]string{walk.AnnotationReferenceType: walk.ReferenceTypeAttestation}
	other := blob("sbom")
	root := b.put(t, ocispec.MediaTypeImageIndex, index(ocispec.MediaTypeImageIndex, m1, list, att, other))
	names := map[digest.Digest]string{m1.Digest: "m1", m2.Digest: "m2", list.Digest: "list",
		att.Digest: "att", other.Digest: "other", root.Digest: "root"}

	var got visits
	var attested []string
	w := walk.Walker{Fetch: b.fetch, Visit: func(ctx context.Context, n *walk.Node) error {
		if walk.IsAttestation(n.Desc) {
			attested = append(attested, names[n.Desc.Digest])
		}
		return got.visit(names)(ctx, n)
	}}
	if err := w.Walk(context.Background(), root); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("m1:%d m2:%d list:%d att:%d other:%d root:%d",
		walk.Manifest, walk.Manifest, walk.Index, walk.Manifest, walk.Other, walk.Index)
	if s := strings.Join(got, " "); s != want {
		t.Errorf("visited %s, want %s", s, want)
	}
	if strings.Join(attested, " ") != "att" {
		t.Errorf("attestations %v, want [att]", attested)
	}
	for d, n := range b.reads {
		if n != 1 {
			t.Errorf("%s read %d times", names[d], n)
		}
	}
	if b.reads[other.Digest] != 0 {
		t.Errorf("a blob that is not an index or manifest was read")
	}
}

// TestWalkSniffsMediaType: descriptors without a media type (index.json
// written by hand, a registry's wrong Content-Type) take the blob's, or its
// shape's; Decode fills them in.
func TestWalkSniffsMediaType(t *testing.T) {
	b := newBlobs()
	m := b.put(t, "", manifest("", blob("l")))
	root := b.put(t, "", index("", m))
	var kinds []walk.Kind
	var types []string
	w := walk.Walker{Fetch: b.fetch, Visit: func(_ context.Context, n *walk.Node) error {
		kinds = append(kinds, n.Kind)
		types = append(types, n.Desc.MediaType)
		return nil
	}}
	if err := w.Walk(context.Background(), root); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(kinds) != fmt.Sprint([]walk.Kind{walk.Manifest, walk.Index}) ||
		fmt.Sprint(types) != fmt.Sprint([]string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex}) {
		t.Errorf("kinds %v, media types %v", kinds, types)
	}
}

// nested returns an index nested depth times over a manifest.
func nested(t *testing.T, b *blobs, depth int) ocispec.Descriptor {
	d := b.put(t, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest))
	for range depth {
		d = b.put(t, ocispec.MediaTypeImageIndex, index(ocispec.MediaTypeImageIndex, d))
	}
	return d
}

// TestWalkDepth: the nesting limit is format.MaxIndexDepth for every user.
func TestWalkDepth(t *testing.T) {
	b := newBlobs()
	w := walk.Walker{Fetch: b.fetch, Visit: func(context.Context, *walk.Node) error { return nil }}
	if err := w.Walk(context.Background(), nested(t, b, format.MaxIndexDepth-1)); err != nil {
		t.Errorf("depth %d: %v", format.MaxIndexDepth-1, err)
	}
	err := w.Walk(context.Background(), nested(t, b, format.MaxIndexDepth))
	if err == nil || !strings.Contains(err.Error(), "under 8 nested image indexes (at most 7)") {
		t.Errorf("depth %d: got %v, want nested too deep", format.MaxIndexDepth, err)
	}
}

// TestWalkOnError: with OnError, a broken node is reported and its
// siblings still visited; without, the walk stops at it.
func TestWalkOnError(t *testing.T) {
	b := newBlobs()
	missing := blob("missing manifest")
	missing.MediaType = ocispec.MediaTypeImageManifest
	good := b.put(t, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest))
	root := b.put(t, ocispec.MediaTypeImageIndex, index(ocispec.MediaTypeImageIndex, missing, good))
	var visited, failed []digest.Digest
	w := walk.Walker{Fetch: b.fetch,
		Visit: func(_ context.Context, n *walk.Node) error {
			visited = append(visited, n.Desc.Digest)
			return nil
		},
		OnError: func(desc ocispec.Descriptor, err error) error {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("error %v, want ErrNotFound", err)
			}
			failed = append(failed, desc.Digest)
			return nil
		}}
	if err := w.Walk(context.Background(), root); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(failed) != fmt.Sprint([]digest.Digest{missing.Digest}) ||
		fmt.Sprint(visited) != fmt.Sprint([]digest.Digest{good.Digest, root.Digest}) {
		t.Errorf("failed %v, visited %v", failed, visited)
	}
	visited = nil
	w.OnError = nil
	if err := w.Walk(context.Background(), root); !errors.Is(err, store.ErrNotFound) || len(visited) != 0 {
		t.Errorf("without OnError: %v, visited %v", err, visited)
	}
}

// TestWalkSkip: a descriptor the caller has seen is not read again, nor
// anything under it.
func TestWalkSkip(t *testing.T) {
	b := newBlobs()
	m := b.put(t, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest))
	sub := b.put(t, ocispec.MediaTypeImageIndex, index(ocispec.MediaTypeImageIndex, m))
	root := b.put(t, ocispec.MediaTypeImageIndex, index(ocispec.MediaTypeImageIndex, sub))
	w := walk.Walker{Fetch: b.fetch,
		Skip:  func(d ocispec.Descriptor) bool { return d.Digest == sub.Digest },
		Visit: func(context.Context, *walk.Node) error { return nil }}
	if err := w.Walk(context.Background(), root); err != nil {
		t.Fatal(err)
	}
	if b.reads[sub.Digest]+b.reads[m.Digest] != 0 {
		t.Errorf("skipped index read %d times, its manifest %d", b.reads[sub.Digest], b.reads[m.Digest])
	}
}
