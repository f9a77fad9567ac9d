package main

import (
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// parsePlatform parses os/arch[/variant] as containerd and docker do
// (x86_64 and aarch64 normalized); "" gives nil (the default). An os or an
// arch alone, which containerd completes with the host's, is refused: an
// image names both. So are OS versions and features: the image's are not
// the user's to set.
func parsePlatform(s string) (*ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	if n := strings.Count(s, "/"); n < 1 || n > 2 {
		return nil, usagef("platform %q: want os/arch[/variant]", s)
	}
	p, err := platforms.Parse(s)
	if err != nil {
		return nil, usagef("platform %q: %w", s, err)
	}
	if p.OSVersion != "" || len(p.OSFeatures) > 0 {
		return nil, usagef("platform %q: want os/arch[/variant], without an OS version or features", s)
	}
	return &p, nil
}

// hostPlatform is the platform images are created for by default
// (containerd's default: the arm variant read from the CPU).
func hostPlatform() ocispec.Platform { return platforms.DefaultSpec() }

// platformString formats p as os/arch[/variant].
func platformString(p *ocispec.Platform) string {
	if p == nil {
		return ""
	}
	return platforms.Format(*p)
}
