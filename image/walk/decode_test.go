package walk_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/walk"
	"github.com/oci2/oci2/store"
)

// TestWalkRejects: every way an index or manifest is refused, with the
// problem named; nothing is visited.
func TestWalkRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(t *testing.T, b *blobs) ocispec.Descriptor
		nodes int
		want  string
		is    error
	}{
		{"media types disagree", func(t *testing.T, b *blobs) ocispec.Descriptor {
			d := b.put(t, ocispec.MediaTypeImageIndex, index(ocispec.MediaTypeImageIndex))
			d.MediaType = ocispec.MediaTypeImageManifest
			return d
		}, 0, `descriptor says "application/vnd.oci.image.manifest.v1+json", blob says "application/vnd.oci.image.index.v1+json"`, nil},
		{"layer digest invalid", func(t *testing.T, b *blobs) ocispec.Descriptor {
			l := blob("l")
			l.Digest = "sha256:nothex"
			return b.put(t, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest, l))
		}, 0, `blob "sha256:nothex"`, nil},
		{"layer size negative", func(t *testing.T, b *blobs) ocispec.Descriptor {
			l := blob("l")
			l.Size = -1
			return b.put(t, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest, l))
		}, 0, "has size -1", nil},
		{"not an image", func(t *testing.T, b *blobs) ocispec.Descriptor {
			return b.put(t, "", map[string]string{"hello": "world"})
		}, 0, "neither an image index nor a manifest", nil},
		{"size mismatch", func(t *testing.T, b *blobs) ocispec.Descriptor {
			d := b.put(t, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest))
			d.Size++
			return d
		}, 0, "descriptor says", store.ErrSizeMismatch},
		{"too large", func(t *testing.T, b *blobs) ocispec.Descriptor {
			d := b.put(t, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest))
			d.Size = format.MaxManifestSize + 1
			return d
		}, 0, "over the", store.ErrTooLarge},
		{"too many nodes", func(t *testing.T, b *blobs) ocispec.Descriptor {
			m1 := b.put(t, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest, blob("1")))
			m2 := b.put(t, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest, blob("2")))
			return b.put(t, ocispec.MediaTypeImageIndex, index(ocispec.MediaTypeImageIndex, m1, m2))
		}, 2, "more than 2 manifests and indexes", nil},
		{"entry digest invalid", func(t *testing.T, b *blobs) ocispec.Descriptor {
			bad := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:../../etc", Size: 2}
			return b.put(t, ocispec.MediaTypeImageIndex, index(ocispec.MediaTypeImageIndex, bad))
		}, 0, `descriptor "sha256:../../etc"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBlobs()
			root := tc.build(t, b)
			visited := 0
			w := walk.Walker{Fetch: b.fetch, MaxNodes: tc.nodes,
				Visit: func(context.Context, *walk.Node) error { visited++; return nil }}
			err := w.Walk(context.Background(), root)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if visited != 0 && tc.name != "too many nodes" {
				t.Errorf("%d nodes visited", visited)
			}
		})
	}
}

// TestSniff: the media type of a blob from its field or its shape.
func TestSniff(t *testing.T) {
	for in, want := range map[string]string{
		`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}`: format.MediaTypeDockerManifest,
		`{"manifests":[]}`:          ocispec.MediaTypeImageIndex,
		`{"config":{},"layers":[]}`: ocispec.MediaTypeImageManifest,
		`{"config":{}}`:             "",
		`not json`:                  "",
	} {
		if got := walk.Sniff([]byte(in)); got != want {
			t.Errorf("Sniff(%s) = %q, want %q", in, got, want)
		}
	}
}
