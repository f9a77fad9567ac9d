package transfer_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/local"
	"github.com/oci2/oci2/store/registry/registrytest"
	"github.com/oci2/oci2/transfer"
)

// withPlainManifest stores a copy of image index idx of st with one more
// plain (non-oci2) manifest, annotated as BuildKit annotates attestation
// manifests when attest, and names it name; it returns the new index and
// the plain manifest's statement blob.
func withPlainManifest(t *testing.T, st *local.Store, idx ocispec.Descriptor, name string, attest bool) (ocispec.Descriptor, digest.Digest) {
	t.Helper()
	ctx := t.Context()
	b, err := st.ReadBlob(ctx, idx.Digest, 0)
	if err != nil {
		t.Fatal(err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	image := index.Manifests[0]
	stmt, err := writer.PutJSON(ctx, st, "application/vnd.in-toto+json", map[string]string{"_type": "https://in-toto.io/Statement/v0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := writer.PutJSON(ctx, st, ocispec.MediaTypeImageConfig, ocispec.Image{Platform: ocispec.Platform{OS: "unknown", Architecture: "unknown"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := writer.PutJSON(ctx, st, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg, Layers: []ocispec.Descriptor{stmt}})
	if err != nil {
		t.Fatal(err)
	}
	m.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	if attest {
		m.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest",
			"vnd.docker.reference.digest": image.Digest.String()}
	}
	out, err := writer.WriteIndexWith(ctx, st, []ocispec.Descriptor{image}, []ocispec.Descriptor{m}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetRef(ctx, name, out); err != nil {
		t.Fatal(err)
	}
	return out, stmt.Digest
}

// TestAttestationsRoundTrip: an index with an attestation manifest is
// pushed and pulled with it, its blobs stored as they are, without a
// warning; another plain manifest is carried too, with one.
func TestAttestationsRoundTrip(t *testing.T) {
	srv := registrytest.StartInProcess(t)
	a := newStore(t)
	img := create(t, a, "example.com/app:v1", v1Files())
	for _, attest := range []bool{true, false} {
		idx, stmt := withPlainManifest(t, a, img, "example.com/app:att", attest)
		ref := srv.Host + "/app:att"
		if _, err := transfer.Push(t.Context(), a, idx, ref, transfer.PushOptions{Options: opts(nil)}); err != nil {
			t.Fatal(err)
		}
		b := newStore(t)
		var w warnings
		res, err := transfer.Pull(t.Context(), b, ref, transfer.PullOptions{Options: opts(&w)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Digest != idx.Digest || res.Manifests != 2 {
			t.Errorf("pulled %s with %d manifests, pushed %s with 2", res.Digest, res.Manifests, idx.Digest)
		}
		if _, err := b.Stat(t.Context(), stmt); err != nil {
			t.Errorf("statement blob not pulled: %v", err)
		}
		warned := strings.Contains(w.String(), "neither oci2 images nor attestations")
		if warned == attest {
			t.Errorf("attestation %v: warnings %q", attest, w.String())
		}
		if attest {
			mustCheck(t, b)
		}
	}
}
