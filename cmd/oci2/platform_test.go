package main

import (
	"errors"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestParsePlatform: containerd's parser, normalizing architecture names,
// with os/arch required and OS versions and features refused as usage
// errors (exit code 2).
func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]ocispec.Platform{
		"linux/amd64":    {OS: "linux", Architecture: "amd64"},
		"linux/x86_64":   {OS: "linux", Architecture: "amd64"},
		"linux/aarch64":  {OS: "linux", Architecture: "arm64"},
		"linux/arm64/v8": {OS: "linux", Architecture: "arm64", Variant: "v8"},
		"linux/arm/v7":   {OS: "linux", Architecture: "arm", Variant: "v7"},
	} {
		p, err := parsePlatform(in)
		if err != nil || p == nil || p.OS != want.OS || p.Architecture != want.Architecture || p.Variant != want.Variant {
			t.Errorf("parsePlatform(%q) = %+v, %v; want %+v", in, p, err, want)
			continue
		}
		if in != "linux/x86_64" && in != "linux/aarch64" && platformString(p) != in {
			t.Errorf("platformString(parsePlatform(%q)) = %q", in, platformString(p))
		}
	}
	for _, in := range []string{"linux", "amd64", "linux/amd64/v1/x", "linux//amd64", "linux/amd 64", "linux(10.0)/amd64", "linux(+org.oci2.v1)/amd64"} {
		var ue usageError
		if p, err := parsePlatform(in); !errors.As(err, &ue) {
			t.Errorf("parsePlatform(%q) = %+v, %v; want a usage error", in, p, err)
		}
	}
	if p, err := parsePlatform(""); p != nil || err != nil {
		t.Errorf(`parsePlatform("") = %+v, %v; want nil, nil`, p, err)
	}
}
