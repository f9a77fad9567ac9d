package frontend

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/client/llb"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/buildkit/basesource"
	"github.com/oci2/oci2/format"
)

// maxJSONBlob bounds an index, manifest or config the frontend reads.
const maxJSONBlob = 8 << 20

// base is an OCIv2 image recognised as a base: its index (or manifest, when
// named by manifest digest) and the manifests loaded for the platforms asked.
type base struct {
	shown  string        // the reference as resolved (127.0.0.1:5000/oci2/busybox:v1)
	name   string        // repository, normalized (127.0.0.1:5000/oci2/busybox)
	digest digest.Digest // what it was resolved to: index or manifest
	index  *ocispec.Index

	mu     sync.Mutex // stages resolve concurrently
	loaded map[digest.Digest]*manifest
}

func (b *base) get(d digest.Digest) *manifest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.loaded[d]
}

func (b *base) put(m *manifest) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.loaded[m.desc.Digest] = m
}

// manifest is one platform's OCIv2 manifest with its config.
type manifest struct {
	desc   ocispec.Descriptor
	m      ocispec.Manifest
	config []byte
	root   format.ChunkID
	src    llb.State // what fetched the manifest blob (readBlob)
}

// ref is name@digest, the reference its blobs are fetched by.
func (b *base) ref(d digest.Digest) string { return b.name + "@" + d.String() }

// frontendConfig returns the config the Dockerfile builder is given for
// the platform opt asks for (basesource.FrontendConfig: a base with one
// layer, not scratch).
func (b *base) frontendConfig(p ocispec.Platform) ([]byte, error) {
	m, err := b.pick(&p)
	if err != nil {
		return nil, err
	}
	return basesource.FrontendConfig(m.config, m.root, b.ref(b.digest))
}

// pick returns the loaded manifest for platform p.
func (b *base) pick(p *ocispec.Platform) (*manifest, error) {
	d, err := b.manifestFor(p)
	if err != nil {
		return nil, err
	}
	m := b.get(d.Digest)
	if m == nil {
		return nil, fmt.Errorf("%s: manifest %s for %s was not loaded", b.ref(b.digest), d.Digest, platformString(p))
	}
	return m, nil
}

// manifestFor selects the manifest for p from the index, ignoring the
// org.oci2.v1 feature as OCIv2 readers do (SPEC.md §6.2).
func (b *base) manifestFor(p *ocispec.Platform) (ocispec.Descriptor, error) {
	if b.index == nil {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: b.digest}, nil
	}
	want := platforms.DefaultSpec()
	if p != nil {
		want = *p
	}
	want.OSFeatures = nil
	match := platforms.Only(want)
	for _, d := range b.index.Manifests {
		if d.Platform == nil {
			continue
		}
		cand := *d.Platform
		cand.OSFeatures = nil
		if match.Match(cand) {
			return d, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s: OCIv2 image has no manifest for %s", b.ref(b.digest), platformString(&want))
}

func platformString(p *ocispec.Platform) string {
	if p == nil {
		return platforms.Format(platforms.DefaultSpec())
	}
	return platforms.Format(*p)
}

// normalizedName returns the repository name of ref (tag and digest cut).
func normalizedName(ref string) (string, error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("parsing image reference %q: %w", ref, err)
	}
	return n.Name(), nil
}

// parseIndexOrManifest decodes blob b of an image: an index, or an OCIv2
// manifest. ok is false for anything else (an ordinary manifest).
func parseIndexOrManifest(raw []byte) (idx *ocispec.Index, m *ocispec.Manifest, err error) {
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, nil, fmt.Errorf("parsing image index or manifest: %w", err)
	}
	if probe.MediaType == ocispec.MediaTypeImageIndex || probe.MediaType == format.MediaTypeDockerList || probe.Manifests != nil {
		idx = &ocispec.Index{}
		if err := json.Unmarshal(raw, idx); err != nil {
			return nil, nil, fmt.Errorf("parsing image index: %w", err)
		}
		return idx, nil, nil
	}
	m = &ocispec.Manifest{}
	if err := json.Unmarshal(raw, m); err != nil {
		return nil, nil, fmt.Errorf("parsing image manifest: %w", err)
	}
	return nil, m, nil
}

// isOCIv2 reports whether m is an OCIv2 manifest (SPEC.md §6.1) and
// returns its root tree.
func isOCIv2(m *ocispec.Manifest) (format.ChunkID, bool, error) {
	if m.Annotations[format.AnnotationFormat] == "" {
		return format.ChunkID{}, false, nil
	}
	root, err := format.ParseChunkID(m.Annotations[format.AnnotationRoot])
	if err != nil {
		return format.ChunkID{}, true, fmt.Errorf("OCIv2 manifest annotation %s: %w", format.AnnotationRoot, err)
	}
	return root, true, nil
}

// emptyConfig reports whether the Dockerfile builder would take cfg for
// an empty image (no diff_ids, no history entry with a layer): what an
// OCIv2 manifest named by digest looks like to stock BuildKit.
func emptyConfig(cfg []byte) bool {
	var img ocispec.Image
	if json.Unmarshal(cfg, &img) != nil || len(img.RootFS.DiffIDs) != 0 {
		return false
	}
	for _, h := range img.History {
		if !h.EmptyLayer {
			return false
		}
	}
	return true
}
