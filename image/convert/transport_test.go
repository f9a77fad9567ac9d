package convert

import (
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseLocation(t *testing.T) {
	good := map[string]Location{
		"oci:/tmp/x":                              {TransportOCI, "/tmp/x", ""},
		"oci:dir:v1":                              {TransportOCI, "dir", "v1"},
		"oci:dir:docker.io/library/alpine:3.19":   {TransportOCI, "dir", "docker.io/library/alpine:3.19"},
		"oci-archive:/a/b.tar:latest":             {TransportArchive, "/a/b.tar", "latest"},
		"oci-archive:b.tar:@2":                    {TransportArchive, "b.tar", "@2"},
		"oci:dir:example.com/a/b@sha256:abcdef01": {TransportOCI, "dir", "example.com/a/b@sha256:abcdef01"},
	}
	for s, want := range good {
		got, err := ParseLocation(s)
		if err != nil || got != want {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", s, got, err, want)
		}
		if got.String() != s {
			t.Errorf("String() = %q, want %q", got.String(), s)
		}
	}
	bad := map[string]string{
		"/tmp/x":           "want oci:DIR",
		"docker://alpine":  `unknown transport "docker"`,
		"oci:":             "empty path",
		"oci::tag":         "empty path",
		"oci:dir:":         "empty reference",
		"oci:dir:@x":       "is not @N",
		"oci:dir:bad tag!": "invalid reference name",
		"oci:dir:-x":       "invalid reference name",
	}
	for s, want := range bad {
		if _, err := ParseLocation(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLocation(%q) error %v, want %q", s, err, want)
		}
	}
}

func TestSelectRef(t *testing.T) {
	d := func(name, dg string, extra ...string) ocispec.Descriptor {
		a := map[string]string{}
		if name != "" {
			a[ocispec.AnnotationRefName] = name
		}
		if len(extra) > 0 {
			a[annotationContainerdName] = extra[0]
		}
		return ocispec.Descriptor{Digest: digestT("sha256:" + strings.Repeat(dg, 64)), Annotations: a}
	}
	idx := &ocispec.Index{Manifests: []ocispec.Descriptor{
		d("docker.io/library/alpine:3.19", "1"),
		d("v2", "2", "example.com/app:v2"),
		d("latest", "3"),
		d("example.com/x:latest", "4"),
	}}
	cases := map[string]string{ // ref -> digest char, or error text
		"docker.io/library/alpine:3.19": "1",
		"3.19":                          "1",
		"v2":                            "2",
		"example.com/app:v2":            "2",
		"latest":                        "3", // exact match wins over the tag of #4
		"example.com/x:latest":          "4",
		"other.com/app:v2":              "no image named",
		"nope":                          "no image named",
		"@3":                            "4",
		"@4":                            "has 4 manifests",
		"":                              "has 4 images, name one of",
	}
	for ref, want := range cases {
		got, err := selectRef(idx, Location{Transport: TransportOCI, Path: "p", Ref: ref})
		if len(want) == 1 {
			if err != nil || got.Digest.Encoded()[:1] != want {
				t.Errorf("ref %q: got %v, %v; want digest %s...", ref, got.Digest, err, want)
			}
		} else if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ref %q: error %v, want %q", ref, err, want)
		}
	}
}

func TestPickPlatform(t *testing.T) {
	pd := func(os, arch, variant, dg string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digestT("sha256:" + strings.Repeat(dg, 64)),
			Platform: &ocispec.Platform{OS: os, Architecture: arch, Variant: variant}}
	}
	att := pd("unknown", "unknown", "", "9")
	att.Annotations = map[string]string{annotationReferenceType: "attestation-manifest"}
	idx := &ocispec.Index{Manifests: []ocispec.Descriptor{
		pd("linux", "amd64", "", "1"), att, pd("linux", "arm64", "v8", "2"), pd("linux", "arm", "v6", "3"), pd("linux", "arm", "v7", "4"),
	}}
	cases := []struct {
		want ocispec.Platform
		dg   string
	}{
		{ocispec.Platform{OS: "linux", Architecture: "amd64"}, "1"},
		{ocispec.Platform{OS: "linux", Architecture: "x86_64"}, "1"},
		{ocispec.Platform{OS: "linux", Architecture: "arm64"}, "2"},
		{ocispec.Platform{OS: "linux", Architecture: "aarch64", Variant: "v8"}, "2"},
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "4"},
		{ocispec.Platform{OS: "linux", Architecture: "arm"}, "3"},
	}
	for _, c := range cases {
		got, err := pickPlatform(idx, &c.want)
		if err != nil || got.Digest.Encoded()[:1] != c.dg {
			t.Errorf("%s: got %v, %v; want %s...", platformString(c.want), got.Digest, err, c.dg)
		}
	}
	_, err := pickPlatform(idx, &ocispec.Platform{OS: "linux", Architecture: "s390x"})
	if err == nil || !strings.Contains(err.Error(), "no image for platform linux/s390x (have linux/amd64, linux/arm64/v8, linux/arm/v6, linux/arm/v7)") {
		t.Errorf("got %v", err)
	}
	// One image plus its attestation: taken whatever the host.
	one := &ocispec.Index{Manifests: []ocispec.Descriptor{att, pd("linux", "riscv64", "", "5")}}
	if got, err := pickPlatform(one, nil); err != nil || got.Digest.Encoded()[:1] != "5" {
		t.Errorf("single image: got %v, %v", got.Digest, err)
	}
}
