package transfer

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store/registry"
)

// remoteRef is a parsed registry reference.
type remoteRef struct {
	repo   string // normalized repository name: host/path
	tag    string // "" when pinned by digest only
	digest digest.Digest
}

// parseRemote parses host/path[:tag][@digest]; a bare name gets ":latest".
func parseRemote(s string) (remoteRef, error) {
	r, err := parseRemoteName(s)
	if err == nil && r.tag == "" && r.digest == "" {
		r.tag = "latest"
	}
	return r, err
}

// parseRemoteName is parseRemote without the default tag.
func parseRemoteName(s string) (remoteRef, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return remoteRef{}, fmt.Errorf("parsing reference %q: %w", s, err)
	}
	r := remoteRef{repo: named.Name()}
	if t, ok := named.(reference.Tagged); ok {
		r.tag = t.Tag()
	}
	if c, ok := named.(reference.Canonical); ok {
		r.digest = c.Digest()
	}
	return r, nil
}

// ref is what the manifests endpoint is asked for: the digest when pinned.
func (r remoteRef) ref() string {
	if r.digest != "" {
		return r.digest.String()
	}
	return r.tag
}

func (r remoteRef) String() string {
	s := r.repo
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest.String()
	}
	return s
}

// node is a manifest or an index with its bytes.
type node struct {
	desc ocispec.Descriptor
	data []byte
}

// graph is an image: its manifests and indexes (children before parents,
// the root last) and the other blobs they reference, each once.
type graph struct {
	nodes []node
	blobs []ocispec.Descriptor
}

func (g *graph) root() node { return g.nodes[len(g.nodes)-1] }

// Bounds of an image graph.
const (
	maxGraphNodes = 1024
)

// getFunc returns the verified bytes of a manifest or index.
type getFunc func(ctx context.Context, desc ocispec.Descriptor) ([]byte, error)

// walkGraph reads the image under root with get.
func walkGraph(ctx context.Context, root ocispec.Descriptor, get getFunc) (*graph, error) {
	g := &graph{}
	seen := map[digest.Digest]bool{}
	seenBlob := map[digest.Digest]bool{}
	var visit func(desc ocispec.Descriptor, depth int) error
	visit = func(desc ocispec.Descriptor, depth int) error {
		if seen[desc.Digest] {
			return nil
		}
		if depth >= format.MaxIndexDepth || len(seen) >= maxGraphNodes {
			return fmt.Errorf("image %s: indexes nested too deep or too many manifests", root.Digest)
		}
		seen[desc.Digest] = true
		b, err := get(ctx, desc)
		if err != nil {
			return err
		}
		if desc.Size != 0 && int64(len(b)) != desc.Size {
			return fmt.Errorf("manifest %s: %d bytes, descriptor says %d", desc.Digest, len(b), desc.Size)
		}
		desc.Size = int64(len(b))
		switch desc.MediaType {
		case ocispec.MediaTypeImageIndex, format.MediaTypeDockerList:
			var idx ocispec.Index
			if err := json.Unmarshal(b, &idx); err != nil {
				return fmt.Errorf("image index %s: %w", desc.Digest, err)
			}
			for _, m := range idx.Manifests {
				if !registry.IsManifestType(m.MediaType) {
					return fmt.Errorf("image index %s: entry %s has media type %q", desc.Digest, m.Digest, m.MediaType)
				}
				if err := m.Digest.Validate(); err != nil {
					return fmt.Errorf("image index %s: %w", desc.Digest, err)
				}
				if err := visit(m, depth+1); err != nil {
					return err
				}
			}
		case ocispec.MediaTypeImageManifest, format.MediaTypeDockerManifest:
			var m ocispec.Manifest
			if err := json.Unmarshal(b, &m); err != nil {
				return fmt.Errorf("manifest %s: %w", desc.Digest, err)
			}
			for _, l := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
				if err := l.Digest.Validate(); err != nil {
					return fmt.Errorf("manifest %s: %w", desc.Digest, err)
				}
				if l.Size < 0 {
					return fmt.Errorf("manifest %s: blob %s has size %d", desc.Digest, l.Digest, l.Size)
				}
				if !seenBlob[l.Digest] {
					seenBlob[l.Digest] = true
					g.blobs = append(g.blobs, l)
				}
			}
		default:
			return fmt.Errorf("%s: media type %q is not an image manifest or index", desc.Digest, desc.MediaType)
		}
		g.nodes = append(g.nodes, node{desc: desc, data: b})
		return nil
	}
	if err := visit(root, 0); err != nil {
		return nil, err
	}
	return g, nil
}

// isPack reports whether desc is an oci2 pack (not stored locally: rebuilt
// from its frames).
func isPack(desc ocispec.Descriptor) bool {
	return desc.MediaType == format.MediaTypeTreePack || desc.MediaType == format.MediaTypeDataPack
}

// isManifest reports whether mt is an image manifest's media type.
func isManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == format.MediaTypeDockerManifest
}

// manifestDigests returns the digests of g's image manifests.
func (g *graph) manifestDigests() []digest.Digest {
	var ds []digest.Digest
	for _, n := range g.nodes {
		if isManifest(n.desc.MediaType) {
			ds = append(ds, n.desc.Digest)
		}
	}
	return ds
}

// isAttestation reports whether an index entry is an attestation manifest
// (provenance, SBOM), as BuildKit's image exporter marks them.
func isAttestation(desc ocispec.Descriptor) bool {
	return desc.Annotations["vnd.docker.reference.type"] == "attestation-manifest"
}
