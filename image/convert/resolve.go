package convert

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/walk"
)

// Annotations read besides the OCI ones.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationReferenceType  = walk.AnnotationReferenceType // buildkit attestations
)

func isIndexType(mt string) bool    { return walk.KindOf(mt) == walk.Index }
func isManifestType(mt string) bool { return walk.KindOf(mt) == walk.Manifest }

// selectRef picks the descriptor of index.json that loc.Ref names.
func selectRef(idx *ocispec.Index, loc Location) (ocispec.Descriptor, error) {
	ms := idx.Manifests
	if n := loc.index(); n >= 0 {
		if n >= len(ms) {
			return ocispec.Descriptor{}, fmt.Errorf("%s: index.json has %d manifests", loc, len(ms))
		}
		return ms[n], nil
	}
	if loc.Ref == "" {
		if len(ms) != 1 {
			return ocispec.Descriptor{}, fmt.Errorf("%s: index.json has %d images, name one of %s", loc, len(ms), refNames(ms))
		}
		return ms[0], nil
	}
	// Exact matches first, then a tag given for a full name or a full name
	// given for a tag (buildkit writes the tag and the full name apart).
	for _, match := range []func(ocispec.Descriptor) bool{
		func(d ocispec.Descriptor) bool { return d.Annotations[ocispec.AnnotationRefName] == loc.Ref },
		func(d ocispec.Descriptor) bool { return tagMatches(d, loc.Ref) },
	} {
		var found []ocispec.Descriptor
		for _, d := range ms {
			if match(d) {
				found = append(found, d)
			}
		}
		switch {
		case len(found) == 1:
			return found[0], nil
		case len(found) > 1:
			for _, d := range found[1:] {
				if d.Digest != found[0].Digest {
					return ocispec.Descriptor{}, fmt.Errorf("%s: reference is ambiguous among %s", loc, refNames(found))
				}
			}
			return found[0], nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s: no image named %q in index.json (have %s)", loc, loc.Ref, refNames(ms))
}

// tagMatches matches ref against a descriptor's names when one side is a bare
// tag: "3.19" matches "docker.io/library/alpine:3.19", and
// "docker.io/library/alpine:3.19" matches ref.name "3.19" when the
// containerd name annotation (if any) agrees.
func tagMatches(d ocispec.Descriptor, ref string) bool {
	name := d.Annotations[ocispec.AnnotationRefName]
	if name == "" {
		return false
	}
	switch {
	case isBareTag(ref) && !isBareTag(name):
		return tagOf(name) == ref
	case !isBareTag(ref) && isBareTag(name):
		full := d.Annotations[annotationContainerdName]
		return tagOf(ref) == name && (full == "" || full == ref)
	}
	return false
}

func isBareTag(s string) bool { return !strings.ContainsAny(s, "/:@") }

// tagOf returns the tag of "repo:tag" ("" when there is none).
func tagOf(name string) string {
	name, _, _ = strings.Cut(name, "@")
	i := strings.LastIndexByte(name, ':')
	if i < 0 || strings.Contains(name[i:], "/") {
		return ""
	}
	return name[i+1:]
}

func refNames(ms []ocispec.Descriptor) string {
	var names []string
	for _, d := range ms {
		if n := d.Annotations[ocispec.AnnotationRefName]; n != "" {
			names = append(names, fmt.Sprintf("%q", n))
		} else {
			names = append(names, string(d.Digest))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// HostPlatform is the platform of this process.
func HostPlatform() ocispec.Platform {
	return ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
}

// platformMatches reports whether have satisfies want, both normalized as
// containerd does (x86_64 is amd64, arm64/v8 is arm64, arm is arm/v7). An
// empty want.Variant accepts any variant.
func platformMatches(want, have ocispec.Platform) bool {
	w, h := platforms.Normalize(want), platforms.Normalize(have)
	if w.OS != h.OS || w.Architecture != h.Architecture {
		return false
	}
	return want.Variant == "" || w.Variant == h.Variant
}

func platformString(p ocispec.Platform) string { return platforms.Format(p) }

// pickPlatform chooses among an image index's manifests. With want nil it
// takes the only image, or else the host's platform.
func pickPlatform(idx *ocispec.Index, want *ocispec.Platform) (ocispec.Descriptor, error) {
	var cands []ocispec.Descriptor
	for _, d := range idx.Manifests {
		if !isManifestType(d.MediaType) && !isIndexType(d.MediaType) {
			continue
		}
		if d.Annotations[annotationReferenceType] != "" ||
			(d.Platform != nil && d.Platform.OS == "unknown") {
			continue // attestation manifests
		}
		cands = append(cands, d)
	}
	if len(cands) == 0 {
		return ocispec.Descriptor{}, fmt.Errorf("image index lists no image manifest")
	}
	if want == nil {
		if len(cands) == 1 {
			return cands[0], nil
		}
		host := HostPlatform()
		want = &host
	}
	var have []string
	for _, d := range cands {
		if d.Platform == nil {
			have = append(have, "unknown")
			continue
		}
		if platformMatches(*want, *d.Platform) {
			return d, nil
		}
		have = append(have, platformString(*d.Platform))
	}
	return ocispec.Descriptor{}, fmt.Errorf("no image for platform %s (have %s)", platformString(*want), strings.Join(have, ", "))
}

// resolveManifest follows image indexes from desc down to one image manifest.
func resolveManifest(l srcLayout, desc ocispec.Descriptor, want *ocispec.Platform) (ocispec.Descriptor, *ocispec.Manifest, error) {
	for depth := 0; ; depth++ {
		if depth >= format.MaxIndexDepth {
			return desc, nil, fmt.Errorf("image indexes nested too deeply")
		}
		if desc.MediaType == "" {
			return desc, nil, fmt.Errorf("descriptor %s has no media type", desc.Digest)
		}
		b, err := readBlob(l, desc, format.MaxManifestSize)
		if err != nil {
			return desc, nil, err
		}
		n, err := walk.Decode(desc, b)
		if err != nil {
			return desc, nil, err
		}
		if n.Kind == walk.Manifest {
			return desc, n.Manifest, nil
		}
		if desc, err = pickPlatform(n.Index, want); err != nil {
			return desc, nil, fmt.Errorf("image index %s: %w", n.Desc.Digest, err)
		}
	}
}
