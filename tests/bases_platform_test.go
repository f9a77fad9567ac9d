package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestBaseMultiPlatform builds FROM an OCIv2 image of the store whose
// index has two platforms (linux/amd64 and linux/arm64, made by a
// multi-platform type=oci2 export): each platform of a build gets its own
// manifest's tree, by name and by index digest, with no registry asked.
// No RUN, so no emulator is needed.
func TestBaseMultiPlatform(t *testing.T) {
	d, _, p := startStoreBaseDaemon(t)
	files := map[string]string{}
	src := dockerfileContext(t, "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}/ /\n", files)
	for _, arch := range []string{"amd64", "arm64"} {
		if err := os.MkdirAll(filepath.Join(src, arch), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, arch, "arch"), []byte(arch+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	both := []string{"--opt", "platform=linux/amd64,linux/arm64"}
	m := d.mustBuildctl(t, nil, src, "type=oci2,name=t/multi", both...)
	var plats []string
	for _, md := range d.storedIndex(t, "docker.io/t/multi:latest").Manifests {
		if md.MediaType == ocispec.MediaTypeImageManifest && md.Platform != nil && md.Platform.OS != "unknown" {
			plats = append(plats, md.Platform.Architecture)
		}
	}
	if strings.Join(plats, ",") != "amd64,arm64" {
		t.Fatalf("t/multi platforms %v, want amd64 and arm64", plats)
	}

	for _, from := range []string{"t/multi", "t/multi@" + digestOf(t, m)} {
		ctx := dockerfileContext(t, "FROM "+from+"\nCOPY app /app\n", map[string]string{"app": "app\n"})
		out := filepath.Join(t.TempDir(), "out")
		d.mustBuildctl(t, nil, ctx, "type=local,dest="+out, both...)
		for _, arch := range []string{"amd64", "arm64"} {
			got, err := os.ReadFile(filepath.Join(out, "linux_"+arch, "arch"))
			if err != nil || string(got) != arch+"\n" {
				t.Errorf("FROM %s, platform linux/%s: /arch = %q, %v", from, arch, got, err)
			}
		}
		out = filepath.Join(t.TempDir(), "one")
		d.mustBuildctl(t, nil, ctx, "type=local,dest="+out, "--opt", "platform=linux/arm64")
		if got, err := os.ReadFile(filepath.Join(out, "arch")); err != nil || string(got) != "arm64\n" {
			t.Errorf("FROM %s, --opt platform=linux/arm64: /arch = %q, %v", from, got, err)
		}
	}
	if reqs := p.Requests(); len(reqs) != 0 {
		t.Errorf("registry requests %q, want none", reqs)
	}
}
