package walk

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
)

// Kind is what a media type says a blob is.
type Kind int

const (
	// Other is any blob that is not an index or a manifest: a config, a
	// layer, a pack, an unknown type. A walk does not read it.
	Other Kind = iota
	// Index is an OCI image index or a Docker manifest list.
	Index
	// Manifest is an OCI image manifest or a Docker image manifest.
	Manifest
)

// KindOf classifies a media type.
func KindOf(mediaType string) Kind {
	switch mediaType {
	case ocispec.MediaTypeImageIndex, format.MediaTypeDockerList:
		return Index
	case ocispec.MediaTypeImageManifest, format.MediaTypeDockerManifest:
		return Manifest
	}
	return Other
}

// Annotation BuildKit's image exporter puts on the index entry of an
// attestation manifest (provenance, SBOM), and its value there.
const (
	AnnotationReferenceType  = "vnd.docker.reference.type"
	ReferenceTypeAttestation = "attestation-manifest"
)

// IsAttestation reports whether an index entry is an attestation manifest,
// as BuildKit's image exporter marks them: its blobs are in-toto statements,
// not layers.
func IsAttestation(desc ocispec.Descriptor) bool {
	return desc.Annotations[AnnotationReferenceType] == ReferenceTypeAttestation
}

// probe reads just enough of a JSON blob to tell an index from a manifest.
type probe struct {
	MediaType string          `json:"mediaType"`
	Manifests json.RawMessage `json:"manifests"`
	Config    json.RawMessage `json:"config"`
	Layers    json.RawMessage `json:"layers"`
}

// mediaType is the media type the blob declares, or else the one its shape
// implies (an OCI index has "manifests", a manifest "config" and "layers").
func (p *probe) mediaType() string {
	switch {
	case p.MediaType != "":
		return p.MediaType
	case p.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	case p.Config != nil && p.Layers != nil:
		return ocispec.MediaTypeImageManifest
	}
	return ""
}

// Sniff returns the media type of a manifest or index blob that comes
// without one (a registry's wrong Content-Type, a descriptor without
// mediaType), or "" when b is not JSON or says nothing.
func Sniff(b []byte) string {
	var p probe
	if json.Unmarshal(b, &p) != nil {
		return ""
	}
	return p.mediaType()
}

// Node is an image index or manifest, decoded.
type Node struct {
	// Desc is the descriptor it was reached by, its MediaType filled in
	// when the descriptor had none and its Size set to len(Data).
	Desc     ocispec.Descriptor
	Data     []byte
	Kind     Kind
	Index    *ocispec.Index    // when Kind is Index
	Manifest *ocispec.Manifest // when Kind is Manifest
}

// Decode decodes b, the verified blob desc names, as an index or a manifest.
// A descriptor without a media type takes the blob's; one that disagrees
// with the blob's is an error, as is a manifest naming a blob by an invalid
// digest or a negative size.
func Decode(desc ocispec.Descriptor, b []byte) (*Node, error) {
	var p probe
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", desc.Digest, err)
	}
	mt := p.mediaType()
	if desc.MediaType != "" {
		if p.MediaType != "" && p.MediaType != desc.MediaType {
			return nil, fmt.Errorf("%s: descriptor says %q, blob says %q", desc.Digest, desc.MediaType, p.MediaType)
		}
		mt = desc.MediaType
	}
	desc.MediaType = mt
	desc.Size = int64(len(b))
	n := &Node{Desc: desc, Data: b, Kind: KindOf(mt)}
	switch n.Kind {
	case Index:
		n.Index = new(ocispec.Index)
		if err := json.Unmarshal(b, n.Index); err != nil {
			return nil, fmt.Errorf("image index %s: %w", desc.Digest, err)
		}
	case Manifest:
		n.Manifest = new(ocispec.Manifest)
		if err := json.Unmarshal(b, n.Manifest); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		if err := checkBlobs(n.Manifest); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
	default:
		return nil, fmt.Errorf("%s: media type %q is neither an image index nor a manifest", desc.Digest, mt)
	}
	return n, nil
}

// checkBlobs refuses a manifest whose config or layers could not be fetched
// safely: a digest that does not parse, a negative size.
func checkBlobs(m *ocispec.Manifest) error {
	for _, l := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		if err := l.Digest.Validate(); err != nil {
			return fmt.Errorf("blob %q: %w", l.Digest, err)
		}
		if l.Size < 0 {
			return fmt.Errorf("blob %s has size %d", l.Digest, l.Size)
		}
	}
	return nil
}
