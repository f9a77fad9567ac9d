package reader

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/image/walk"
	"github.com/oci2/oci2/store"
)

func resolve(ctx context.Context, r store.Reader, refs store.Refs, nameOrDigest string,
	platform *ocispec.Platform) (ocispec.Descriptor, error) {
	var desc ocispec.Descriptor
	if strings.HasPrefix(nameOrDigest, string(digest.SHA256)+":") {
		d, err := digest.Parse(nameOrDigest)
		if err != nil {
			return desc, fmt.Errorf("resolving %q: %w", nameOrDigest, err)
		}
		info, err := r.Stat(ctx, d)
		if err != nil {
			return desc, fmt.Errorf("resolving %s: %w", d, err)
		}
		desc = ocispec.Descriptor{Digest: d, Size: info.Size}
	} else {
		if refs == nil {
			return desc, fmt.Errorf("resolving %q: no refs to look names up in", nameOrDigest)
		}
		var err error
		if desc, err = refs.GetRef(ctx, nameOrDigest); err != nil {
			return desc, fmt.Errorf("resolving %q: %w", nameOrDigest, err)
		}
	}
	out, err := resolveDesc(ctx, r, desc, platform)
	if err != nil {
		return out, fmt.Errorf("resolving %q: %w", nameOrDigest, err)
	}
	return out, nil
}

// resolveDesc reads the index or manifest desc names; an index is resolved
// to the manifest of platform it lists.
func resolveDesc(ctx context.Context, r store.Reader, desc ocispec.Descriptor,
	platform *ocispec.Platform) (ocispec.Descriptor, error) {
	b, err := readJSONBlob(ctx, r, desc.Digest, desc.Size, MaxManifestSize)
	if err != nil {
		return desc, err
	}
	n, err := walk.Decode(desc, b)
	if err != nil {
		return desc, fmt.Errorf("%w: %w", ErrInvalidImage, err)
	}
	if n.Kind == walk.Index {
		return pickManifest(n.Index, platform)
	}
	return n.Desc, nil
}

// pickManifest chooses the manifest of platform from an index; with a nil
// platform, the only manifest, or else the host's.
func pickManifest(idx *ocispec.Index, platform *ocispec.Platform) (ocispec.Descriptor, error) {
	var cands []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if m.MediaType != ocispec.MediaTypeImageManifest {
			continue
		}
		if p := m.Platform; p != nil && p.OS == "unknown" && p.Architecture == "unknown" {
			continue // attestation manifests
		}
		cands = append(cands, m)
	}
	if len(cands) == 0 {
		return ocispec.Descriptor{}, fmt.Errorf("%w: the index lists no image manifest", ErrNoPlatform)
	}
	want := platform
	if want == nil {
		if len(cands) == 1 {
			return cands[0], nil
		}
		want = &ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	}
	var have []string
	for _, m := range cands {
		if matchPlatform(want, m.Platform) {
			return m, nil
		}
		have = append(have, platformString(m.Platform))
	}
	return ocispec.Descriptor{}, fmt.Errorf("%w %s (the index has %s)", ErrNoPlatform,
		platformString(want), strings.Join(have, ", "))
}

// matchPlatform compares os, architecture and (when asked) variant only,
// not containerd's platforms.Only: an OCIv2 manifest's platform carries
// os.features org.oci2.v1 (format.PlatformFeature), which a request for
// linux/amd64 must still match.
func matchPlatform(want, got *ocispec.Platform) bool {
	if got == nil {
		return false
	}
	return want.OS == got.OS && want.Architecture == got.Architecture &&
		(want.Variant == "" || want.Variant == got.Variant)
}

func platformString(p *ocispec.Platform) string {
	if p == nil {
		return "(no platform)"
	}
	return platforms.Format(*p)
}
