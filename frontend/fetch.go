package frontend

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
)

// load fetches, through the daemon, the index (or manifest) dgst of image
// ref and the manifest and config for platform, and remembers the base. It
// returns nil and no error for an ordinary image. identified says the
// image was seen to be OCIv2 (its index's platform mark, or its manifest's
// annotations) before err.
func (c *oci2Client) load(ctx context.Context, ref string, dgst digest.Digest, platform ocispec.Platform) (b *base, identified bool, err error) {
	name, err := normalizedName(ref)
	if err != nil {
		return nil, false, err
	}
	if b := c.lookup(dgst); b != nil {
		_, _, err := c.loadManifest(ctx, b, &platform)
		return b, true, err
	}
	if err := c.capsMissing(); err != nil {
		return nil, false, err
	}
	b = &base{shown: ref, name: name, digest: dgst, loaded: map[digest.Digest]*manifest{}}
	raw, src, err := c.readBlob(ctx, name, dgst, ocispec.MediaTypeImageIndex+", "+ocispec.MediaTypeImageManifest)
	if err != nil {
		return nil, false, fmt.Errorf("fetching %s through this BuildKit daemon: %w", dgst, err)
	}
	idx, m, err := parseIndexOrManifest(raw)
	if err != nil {
		return nil, false, err
	}
	if idx != nil {
		b.index = idx
		ok, marked, err := c.loadManifest(ctx, b, &platform)
		if err != nil || !ok {
			return nil, marked, err
		}
	} else {
		root, ok, err := isOCIv2(m)
		if err != nil || !ok {
			return nil, ok, err
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: dgst, Size: int64(len(raw))}
		if err := c.addManifest(ctx, b, src, desc, m, root); err != nil {
			return nil, true, err
		}
	}
	c.remember(b)
	return b, true, nil
}

// loadManifest loads the manifest of b's index for p, unless it was. ok
// says it is an OCIv2 manifest; marked that the index marks it as one.
func (c *oci2Client) loadManifest(ctx context.Context, b *base, p *ocispec.Platform) (ok, marked bool, err error) {
	desc, err := b.manifestFor(p)
	if err != nil {
		return false, false, err
	}
	if b.get(desc.Digest) != nil {
		return true, true, nil
	}
	marked = desc.Platform != nil && slices.Contains(desc.Platform.OSFeatures, format.PlatformFeature)
	raw, src, err := c.readBlob(ctx, b.name, desc.Digest, ocispec.MediaTypeImageManifest)
	if err != nil {
		return false, marked, fmt.Errorf("fetching manifest %s through this BuildKit daemon: %w", desc.Digest, err)
	}
	_, m, err := parseIndexOrManifest(raw)
	if err != nil || m == nil {
		return false, marked, fmt.Errorf("manifest %s: not an image manifest (%v)", desc.Digest, err)
	}
	root, ok, err := isOCIv2(m)
	if err != nil || !ok {
		return false, marked || ok, err
	}
	desc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: desc.Digest, Size: int64(len(raw))}
	return true, true, c.addManifest(ctx, b, src, desc, m, root)
}

// addManifest fetches m's config and records the manifest in b.
func (c *oci2Client) addManifest(ctx context.Context, b *base, src llb.State, desc ocispec.Descriptor, m *ocispec.Manifest, root format.ChunkID) error {
	cfg, _, err := c.readBlob(ctx, b.name, m.Config.Digest, m.Config.MediaType)
	if err != nil {
		return fmt.Errorf("fetching config %s through this BuildKit daemon: %w", m.Config.Digest, err)
	}
	b.put(&manifest{desc: desc, m: *m, config: cfg, root: root, src: src})
	return nil
}

// readBlob has the daemon fetch blob d of image name (llb.ImageBlob: the
// daemon's registry settings and the session's credentials) and returns its
// bytes, with the state that fetched it. A manifest may need a second way:
// BuildKit fetches blobs with "Accept: */*", and a distribution registry
// serves an OCI manifest only to a client that accepts its media type, so
// it is then asked for over HTTP with that Accept header (anonymously:
// registries needing a token refuse it, and the build fails naming the
// image).
func (c *oci2Client) readBlob(ctx context.Context, name string, d digest.Digest, mediaType string) ([]byte, llb.State, error) {
	ways := []llb.State{blobState(name, d, mediaType)}
	if strings.Contains(mediaType, ocispec.MediaTypeImageManifest) || strings.Contains(mediaType, ocispec.MediaTypeImageIndex) {
		if st, loopback, ok := manifestOverHTTP(name, d, mediaType); ok && loopback {
			// plain HTTP without credentials: first, as it works there
			ways = []llb.State{st, ways[0]}
		} else if ok {
			ways = append(ways, st)
		}
	}
	var first error
	for _, st := range ways {
		raw, err := c.solveFile(ctx, st, d)
		if err == nil {
			return raw, st, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, llb.State{}, first
}

// solveFile solves st, whose result holds blob d as the file named by its
// hex digest, and returns the verified bytes.
func (c *oci2Client) solveFile(ctx context.Context, st llb.State, d digest.Digest) ([]byte, error) {
	def, err := st.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.Client.Solve(ctx, client.SolveRequest{Definition: def.ToPB()})
	if err != nil {
		return nil, err
	}
	r, err := res.SingleRef()
	if err != nil {
		return nil, err
	}
	raw, err := r.ReadFile(ctx, client.ReadRequest{Filename: d.Encoded()})
	if err != nil {
		return nil, err
	}
	if len(raw) > maxJSONBlob || digest.FromBytes(raw) != d {
		return nil, fmt.Errorf("blob %s: %d bytes that do not match it (or over %d)", d, len(raw), maxJSONBlob)
	}
	return raw, nil
}

// notBuildable is the error for an OCIv2 base this daemon cannot build on
// through the frontend: it names the image and gives the ways out.
func notBuildable(ref string, d digest.Digest, why error) error {
	return fmt.Errorf("%s is an OCIv2 image (%s), which this frontend cannot build on here: %w; "+
		"ways out: build with buildkitd-oci2 (it builds on OCIv2 images itself), "+
		"or convert the image to an ordinary one with `oci2 pull %s && oci2 export %s oci:DIR` "+
		"and give it as a build context: --build-context NAME=oci-layout://DIR "+
		"(buildctl: --oci-layout NAME=DIR --opt context:NAME=oci-layout://NAME@DIGEST)", ref, d, why, ref, ref)
}
