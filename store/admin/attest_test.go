package admin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/image/walk"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/memstore"
)

// attested stores baseTree as name with an attestation manifest listed
// after the image, as the exporter writes it, and returns the digests of
// the attestation's manifest, config and statement.
func attested(t *testing.T, st *memstore.Store, name string) []digest.Digest {
	t.Helper()
	ctx := context.Background()
	img := storeImage(t, st, "", baseTree())
	var idx ocispec.Index
	b, err := st.ReadBlob(ctx, img.Digest, 0)
	if err != nil || json.Unmarshal(b, &idx) != nil {
		t.Fatalf("reading index: %v", err)
	}
	image := idx.Manifests[0]
	put := func(mt string, b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		if err := st.PutBlob(ctx, d, b); err != nil {
			t.Fatal(err)
		}
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
	}
	stmt := put("application/vnd.in-toto+json", []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v1"}`))
	cfg := put(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers"}}`))
	mb, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg, Layers: []ocispec.Descriptor{stmt}})
	man := put(ocispec.MediaTypeImageManifest, mb)
	man.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	man.Annotations = map[string]string{walk.AnnotationReferenceType: walk.ReferenceTypeAttestation,
		"vnd.docker.reference.digest": image.Digest.String()}
	image.Platform.OSFeatures = nil // WriteIndexWith marks it again
	desc, err := writer.WriteIndexWith(ctx, st, []ocispec.Descriptor{image}, []ocispec.Descriptor{man}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetRef(ctx, name, desc); err != nil {
		t.Fatal(err)
	}
	return []digest.Digest{man.Digest, cfg.Digest, stmt.Digest}
}

// TestGCKeepsAttestations: gc keeps the attestation manifests of a named
// image and their blobs, and removes them with the image; check accepts
// them (they are not oci2 images) and reports a missing statement.
func TestGCKeepsAttestations(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	att := attested(t, st, "docker.io/library/a:latest")
	if rep := mustCheck(t, st, true); !rep.OK() {
		t.Fatalf("check: %+v", rep.Problems)
	}
	if _, err := GC(ctx, st, GCOptions{}); err != nil {
		t.Fatal(err)
	}
	have := blobs(t, st)
	for _, d := range att {
		if _, ok := have[d]; !ok {
			t.Errorf("gc removed attestation blob %s", d)
		}
	}

	if err := st.DeleteBlob(ctx, att[2]); err != nil {
		t.Fatal(err)
	}
	rep := mustCheck(t, st, false)
	if len(rep.Problems) != 1 || rep.Problems[0].Blob != att[2] || !strings.Contains(rep.Problems[0].Message, "attestation manifest") {
		t.Errorf("check of a missing statement: %+v", rep.Problems)
	}

	if err := st.DeleteRef(ctx, "docker.io/library/a:latest"); err != nil {
		t.Fatal(err)
	}
	if _, err := GC(ctx, st, GCOptions{}); err != nil {
		t.Fatal(err)
	}
	have = blobs(t, st)
	for _, d := range att[:2] {
		if _, ok := have[d]; ok {
			t.Errorf("gc kept attestation blob %s of a removed image", d)
		}
	}
}
