package writer_test

import (
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/image/writer"
)

func TestWriteIndex(t *testing.T) {
	e := newEnv(t)
	res := e.write(goldenTree(), writer.Options{Config: testConfig})
	desc, err := writer.WriteIndex(e.ctx, e.st, []ocispec.Descriptor{res.Manifest}, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	idx, b := readIndex(t, e, desc)
	if desc.MediaType != ocispec.MediaTypeImageIndex || len(idx.Manifests) != 1 ||
		idx.Manifests[0].Digest != res.Manifest.Digest || idx.Manifests[0].Platform.OS != "linux" {
		t.Errorf("index %s: %s", desc.MediaType, b)
	}
	noPlat := res.Manifest
	noPlat.Platform = nil
	if _, err := writer.WriteIndex(e.ctx, e.st, []ocispec.Descriptor{noPlat}, nil); err == nil {
		t.Error("manifest without platform accepted")
	}
}

// TestWriteIndexWith: other manifests (attestations) follow the images
// without the oci2 platform feature; without them the index is
// WriteIndex's, byte for byte.
func TestWriteIndexWith(t *testing.T) {
	e := newEnv(t)
	res := e.write(goldenTree(), writer.Options{Config: testConfig})
	plain, err := writer.WriteIndex(e.ctx, e.st, []ocispec.Descriptor{res.Manifest}, nil)
	if err != nil {
		t.Fatal(err)
	}
	same, err := writer.WriteIndexWith(e.ctx, e.st, []ocispec.Descriptor{res.Manifest}, nil, nil)
	if err != nil || same.Digest != plain.Digest {
		t.Fatalf("no others: %s, WriteIndex gives %s (%v)", same.Digest, plain.Digest, err)
	}
	att := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("att"), Size: 3,
		Platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"}}
	desc, err := writer.WriteIndexWith(e.ctx, e.st, []ocispec.Descriptor{res.Manifest}, []ocispec.Descriptor{att}, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx, b := readIndex(t, e, desc)
	if len(idx.Manifests) != 2 || idx.Manifests[0].Digest != res.Manifest.Digest ||
		len(idx.Manifests[0].Platform.OSFeatures) != 1 || idx.Manifests[1].Digest != att.Digest ||
		len(idx.Manifests[1].Platform.OSFeatures) != 0 {
		t.Errorf("index: %s", b)
	}
}

// readIndex reads the stored index desc names.
func readIndex(t *testing.T, e *env, desc ocispec.Descriptor) (ocispec.Index, []byte) {
	t.Helper()
	b, err := e.st.ReadBlob(e.ctx, desc.Digest, 0)
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	return idx, b
}
