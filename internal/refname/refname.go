package refname

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// Ref is a parsed image reference: a Name (fully normalized, with a tag unless
// it is pinned by digest), a Digest, or both ("name@sha256:...").
type Ref struct {
	// Name is the normalized name, e.g. "docker.io/library/hello:latest";
	// empty for a bare digest.
	Name string
	// Digest pins the content; empty unless given.
	Digest digest.Digest
}

// String returns the reference as it is stored or printed: the name, the
// digest, or "name@digest".
func (r Ref) String() string {
	switch {
	case r.Name == "":
		return r.Digest.String()
	case r.Digest == "":
		return r.Name
	default:
		return r.Name + "@" + r.Digest.String()
	}
}

// IsDigest reports whether s is a valid content digest ("sha256:<64 hex>"),
// as opposed to an image name.
func IsDigest(s string) bool {
	if !strings.Contains(s, ":") || strings.Contains(s, "/") {
		return false
	}
	d, err := digest.Parse(s)
	return err == nil && d.Algorithm().Available()
}

// Parse parses a name, a "name@digest" or a bare digest. Names are
// normalized docker-style: a missing domain becomes docker.io, a single
// component gets "library/", a missing tag becomes ":latest" (unless the
// name is pinned by digest).
func Parse(s string) (Ref, error) {
	if s == "" {
		return Ref{}, fmt.Errorf("parsing reference: empty name")
	}
	if IsDigest(s) {
		return Ref{Digest: digest.Digest(s)}, nil
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, fmt.Errorf("parsing reference %q: %w", s, err)
	}
	var r Ref
	if c, ok := named.(reference.Canonical); ok {
		r.Digest = c.Digest()
		if err := r.Digest.Validate(); err != nil {
			return Ref{}, fmt.Errorf("parsing reference %q: %w", s, err)
		}
		if t, ok := named.(reference.Tagged); ok {
			r.Name = named.Name() + ":" + t.Tag()
		} else {
			r.Name = named.Name()
		}
		return r, nil
	}
	r.Name = reference.TagNameOnly(named).String()
	return r, nil
}

// Normalize returns the full normalized name of s (a name, not a digest):
// "hello" -> "docker.io/library/hello:latest". A name pinned by digest keeps
// it ("docker.io/library/hello@sha256:...").
func Normalize(s string) (string, error) {
	if IsDigest(s) {
		return "", fmt.Errorf("normalizing %q: a digest is not a name", s)
	}
	r, err := Parse(s)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

// NormalizeTag is Normalize for names a ref is stored under: a digest
// (bare or pinned) is refused, since a stored name must be movable.
func NormalizeTag(s string) (string, error) {
	r, err := Parse(s)
	if err != nil {
		return "", err
	}
	if r.Digest != "" {
		return "", fmt.Errorf("name %q: a tag name cannot contain a digest", s)
	}
	return r.Name, nil
}

// Familiar shortens a normalized name for display the way docker does
// ("docker.io/library/hello:latest" -> "hello:latest"). Strings that do not
// parse are returned unchanged.
func Familiar(s string) string {
	if IsDigest(s) {
		return s
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return s
	}
	return reference.FamiliarString(named)
}
