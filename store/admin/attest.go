package admin

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// attestation is an attestation manifest an index lists, with the blobs
// it references.
type attestation struct {
	Manifest ocispec.Descriptor
	Blobs    []ocispec.Descriptor
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
