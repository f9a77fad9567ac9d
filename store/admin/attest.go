package admin

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BuildKit's annotations on the index descriptor of an attestation
// manifest (exporter/containerimage; util/attestation).
const (
	annotationReferenceType  = "vnd.docker.reference.type"
	referenceTypeAttestation = "attestation-manifest"
)

// attestation is an attestation manifest an index lists, with the blobs
// it references.
type attestation struct {
	Manifest ocispec.Descriptor
	Blobs    []ocispec.Descriptor
}

// isAttestation reports whether an index entry is an attestation manifest
// (provenance, SBOM) rather than an image: BuildKit marks those so.
func isAttestation(desc ocispec.Descriptor) bool {
	return desc.Annotations[annotationReferenceType] == referenceTypeAttestation
}

// checkAttestation reports the blobs of an attestation manifest that the
// store lacks or holds with another size.
func (c *checker) checkAttestation(ctx context.Context, refs []string, a attestation) {
	for _, b := range a.Blobs {
		info, err := c.st.Stat(ctx, b.Digest)
		if err != nil {
			c.problem(refs, b.Digest, "", fmt.Errorf("attestation manifest %s: %w", a.Manifest.Digest, err))
			continue
		}
		if info.Size != b.Size {
			c.problem(refs, b.Digest, "", fmt.Errorf("attestation manifest %s: blob of %d bytes, descriptor says %d",
				a.Manifest.Digest, info.Size, b.Size))
		}
	}
}
