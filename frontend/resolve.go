package frontend

import (
	"context"
	"fmt"
	"slices"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
)

// resolved is one answer of the daemon's image resolution.
type resolved struct {
	ref    string
	digest digest.Digest
	config []byte
}

// resolveFunc asks the daemon to resolve the image with opt.
type resolveFunc func(ctx context.Context, opt sourceresolver.Opt) (resolved, error)

// resolve is the frontend's resolution of image ref. It asks with the
// platform feature org.oci2.v1 added: the daemon's platform matcher takes a
// manifest whose features are a subset of those asked (containerd
// platforms), so this finds an ordinary image as stock resolution does, and
// an OCIv2 one, whose index marks every manifest with the feature (SPEC.md
// §6.2). An OCIv2 config has no diff_ids; only then are the image's index
// and manifest fetched and looked at. It returns the base for an OCIv2
// image this daemon can build on, and an error naming the image and the
// ways out for one it cannot.
func (c *oci2Client) resolve(ctx context.Context, ref string, opt sourceresolver.Opt, do resolveFunc) (resolved, *base, error) {
	platform := c.platform(opt.ImageOpt)
	p, err := do(ctx, withFeature(opt, platform))
	if err != nil {
		// e.g. a manifest with features of its own (Windows): stock's
		// answer, and error, stand.
		s, serr := do(ctx, opt)
		return s, nil, serr
	}
	if p.digest == "" || !emptyConfig(p.config) {
		return p, nil, nil
	}
	b, identified, err := c.load(ctx, p.ref, p.digest, platform)
	switch {
	case err == nil:
		return p, b, nil // b is nil for an ordinary empty image
	case identified:
		return resolved{}, nil, notBuildable(ref, p.digest, err)
	}
	// Not fetched (the capability missing, the registry refusing): stock
	// resolution tells an OCIv2 index, which it cannot match, from an
	// ordinary empty image, whose answer stands.
	s, serr := do(ctx, opt)
	if serr != nil {
		return resolved{}, nil, notBuildable(ref, p.digest, err)
	}
	return s, nil, nil
}

// withFeature returns opt asking for platform with the org.oci2.v1
// feature. The probe has its own cache key in the builder's resolve cache
// (the platform differs), so it never returns a cached stock error.
func withFeature(opt sourceresolver.Opt, platform ocispec.Platform) sourceresolver.Opt {
	iopt := sourceresolver.ResolveImageOpt{}
	if opt.ImageOpt != nil {
		iopt = *opt.ImageOpt
	}
	platform.OSFeatures = append(slices.Clone(platform.OSFeatures), format.PlatformFeature)
	iopt.Platform = &platform
	opt.ImageOpt = &iopt
	return opt
}

// platform is the platform asked for, else the daemon's first worker's.
func (c *oci2Client) platform(opt *sourceresolver.ResolveImageOpt) ocispec.Platform {
	if opt != nil && opt.Platform != nil {
		return platforms.Normalize(*opt.Platform)
	}
	for _, w := range c.BuildOpts().Workers {
		if len(w.Platforms) > 0 {
			return platforms.Normalize(w.Platforms[0])
		}
	}
	return platforms.DefaultSpec()
}

// capsMissing returns the error for the first capability of the
// fetch-and-unpack subgraph the daemon lacks.
func (c *oci2Client) capsMissing() error {
	has := llbCaps(c.BuildOpts())
	for _, id := range neededCaps {
		if err := has(id); err != nil {
			return fmt.Errorf("this BuildKit daemon lacks the LLB capability %s (BuildKit v0.28 or later has it): %w", id, err)
		}
	}
	return nil
}
