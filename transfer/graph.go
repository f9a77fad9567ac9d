package transfer

import (
	"context"
	"fmt"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/walk"
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

// maxGraphNodes bounds the manifests and indexes of an image read from a
// registry.
const maxGraphNodes = 1024

// getFunc returns the verified bytes of a manifest or index.
type getFunc = walk.FetchFunc

// walkGraph reads the image under root with get, stopping at the first
// problem: an image is moved whole or not at all.
func walkGraph(ctx context.Context, root ocispec.Descriptor, get getFunc) (*graph, error) {
	g := &graph{}
	seenBlob := map[digest.Digest]bool{}
	w := walk.Walker{Fetch: get, MaxNodes: maxGraphNodes,
		Visit: func(ctx context.Context, n *walk.Node) error {
			switch n.Kind {
			case walk.Other:
				return fmt.Errorf("%s: media type %q is not an image manifest or index", n.Desc.Digest, n.Desc.MediaType)
			case walk.Manifest:
				for _, l := range append([]ocispec.Descriptor{n.Manifest.Config}, n.Manifest.Layers...) {
					if !seenBlob[l.Digest] {
						seenBlob[l.Digest] = true
						g.blobs = append(g.blobs, l)
					}
				}
			}
			g.nodes = append(g.nodes, node{desc: n.Desc, data: n.Data})
			return nil
		}}
	if err := w.Walk(ctx, root); err != nil {
		return nil, fmt.Errorf("image %s: %w", root.Digest, err)
	}
	return g, nil
}

// isPack reports whether desc is an oci2 pack (not stored locally: rebuilt
// from its frames).
func isPack(desc ocispec.Descriptor) bool {
	return desc.MediaType == format.MediaTypeTreePack || desc.MediaType == format.MediaTypeDataPack
}

// isManifest reports whether mt is an image manifest's media type.
func isManifest(mt string) bool { return walk.KindOf(mt) == walk.Manifest }

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
