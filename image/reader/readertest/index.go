package readertest

import (
	"context"
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
)

// Indexed is an image Build stored with the oci2 image index naming it.
type Indexed struct {
	Manifest, Index           ocispec.Descriptor
	ManifestBytes, IndexBytes []byte
}

// BuildIndexed stores img as Build does, then an image index with its
// manifest marked as oci2's for linux/amd64 (SPEC.md §6.2), as a registry
// or a store would receive it.
func BuildIndexed(ctx context.Context, st Store, img Image) (*Indexed, error) {
	man, err := Build(ctx, st, img)
	if err != nil {
		return nil, err
	}
	out := &Indexed{Manifest: man}
	if out.ManifestBytes, err = st.ReadBlob(ctx, man.Digest, 0); err != nil {
		return nil, fmt.Errorf("reading back manifest: %w", err)
	}
	md := man
	md.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64", OSFeatures: []string{format.PlatformFeature}}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{md}}
	if out.IndexBytes, err = json.Marshal(index); err != nil {
		return nil, err
	}
	if out.Index, err = PutBlob(ctx, st, ocispec.MediaTypeImageIndex, out.IndexBytes); err != nil {
		return nil, err
	}
	return out, nil
}
