package tests

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/store/registry/registrytest"
)

// The shape BuildKit's image exporter gives attestation manifests.
const (
	refTypeKey     = "vnd.docker.reference.type"
	refDigestKey   = "vnd.docker.reference.digest"
	refTypeAttest  = "attestation-manifest"
	inTotoLayer    = "application/vnd.in-toto+json"
	slsaProvenance = "https://slsa.dev/provenance/v1"
	spdxDocument   = "https://spdx.dev/Document"
)

// inTotoStatement is the part of a statement the tests read.
type inTotoStatement struct {
	Type          string `json:"_type"`
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	Predicate json.RawMessage `json:"predicate"`
}

// TestBuildKitAttestations: `--opt attest:provenance=mode=min|max` with
// `--output type=oci2,push=true` lists a provenance attestation manifest
// after the image in the stored and pushed index, in the image exporter's
// shape (platform unknown/unknown, vnd.docker.reference.* annotations, one
// in-toto layer whose subject is the image manifest); the image manifest is
// the one a build without attestations gives. go-containerregistry reads
// the provenance back from the registry; `oci2 inspect` lists it; pull,
// copy and gc keep it.
func TestBuildKitAttestations(t *testing.T) {
	d, b, srv := startAttestEnv(t)
	hello := filepath.Join("..", "examples", "Dockerfiles", "hello")

	plain := srv.Host + "/oci2/att:plain"
	d.mustBuildctl(t, b, hello, "type=oci2,name="+plain)
	idx0 := d.storedIndex(t, plain)
	if len(idx0.Manifests) != 1 {
		t.Fatalf("a build without attestations: index lists %d manifests, want the image only", len(idx0.Manifests))
	}
	image := idx0.Manifests[0]

	for _, mode := range []string{"min", "max"} {
		t.Run(mode, func(t *testing.T) {
			ref := srv.Host + "/oci2/att:" + mode
			d.mustBuildctl(t, b, hello, "type=oci2,name="+ref+",push=true", "--opt", "attest:provenance=mode="+mode)
			idx := d.storedIndex(t, ref)
			att := checkAttestedIndex(t, d.store, idx, image, 1)
			stmt := storedStatement(t, d.store, att, 0)
			checkProvenance(t, stmt, image.Digest, mode)

			// a stock reader sees the same through the registry
			remoteStmt := registryStatement(t, ref)
			if remoteStmt.PredicateType != slsaProvenance || string(remoteStmt.Predicate) != string(stmt.Predicate) {
				t.Errorf("registry's provenance differs from the store's: %s", remoteStmt.PredicateType)
			}
			// and so does buildx, as a user would ask it
			r := mustRun(t, nil, "docker-buildx", "imagetools", "inspect", "--format", "{{json .Provenance}}", ref)
			if !hasAll(r.Stdout, `"SLSA"`, `"buildDefinition"`, `"buildType"`) {
				t.Errorf("buildx imagetools inspect shows no provenance:\n%s", clip(r.Stdout))
			}
		})
	}

	t.Run("inspect", func(t *testing.T) {
		s := &store{t: t, dir: d.store}
		var out struct {
			Attestations []struct {
				Manifest  string `json:"manifest"`
				Reference string `json:"reference"`
				Layers    []struct {
					PredicateType string `json:"predicate_type"`
				} `json:"layers"`
			} `json:"attestations"`
		}
		if err := json.Unmarshal([]byte(s.must("inspect", srv.Host+"/oci2/att:max").Stdout), &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Attestations) != 1 || out.Attestations[0].Reference != image.Digest.String() ||
			len(out.Attestations[0].Layers) != 1 || out.Attestations[0].Layers[0].PredicateType != slsaProvenance {
			t.Errorf("inspect attestations: %+v", out.Attestations)
		}
	})

	t.Run("pull-copy-gc", func(t *testing.T) { testAttestationsTransfer(t, d, srv, image) })
	t.Run("multi-platform", func(t *testing.T) { testAttestationsMulti(t, d) })
}

// testAttestationsMulti: a two-platform build lists both images, then one
// attestation manifest per platform about its image, in the same order.
func testAttestationsMulti(t *testing.T, d *bkDaemon) {
	ctx := dockerfileContext(t, "FROM scratch\nCOPY hello.txt /hello.txt\n", map[string]string{"hello.txt": "multi\n"})
	d.mustBuildctl(t, nil, ctx, "type=oci2,name=oci2-test/multi-att",
		"--opt", "platform=linux/arm64,linux/amd64", "--opt", "attest:provenance=mode=min")
	idx := d.storedIndex(t, "docker.io/oci2-test/multi-att:latest")
	if len(idx.Manifests) != 4 {
		t.Fatalf("index lists %d manifests, want 2 images and 2 attestation manifests", len(idx.Manifests))
	}
	for i, img := range idx.Manifests[:2] {
		a := idx.Manifests[2+i]
		if a.Annotations[refDigestKey] != img.Digest.String() || a.Platform == nil || a.Platform.OS != "unknown" {
			t.Errorf("attestation %d: %v %+v, want about %s (%s)", i, a.Annotations, a.Platform, img.Digest, img.Platform.Architecture)
			continue
		}
		var m ocispec.Manifest
		readJSON(t, blobPath(d.store, a.Digest.String()), &m)
		if st := storedStatement(t, d.store, m, 0); len(st.Subject) == 0 || st.Subject[0].Digest["sha256"] != img.Digest.Encoded() ||
			!strings.Contains(st.Subject[0].Name, img.Platform.Architecture) {
			t.Errorf("attestation of %s: subjects %+v", img.Platform.Architecture, st.Subject)
		}
	}
}

// startAttestEnv starts a registry and a daemon with the examples' bases,
// without client credentials.
func startAttestEnv(t *testing.T) (*bkDaemon, *bases, *registrytest.Server) {
	t.Helper()
	requireRoot(t)
	requireTools(t, "runc", "buildctl", "docker-buildx")
	srv := registrytest.Start(t, registrytest.Options{})
	dir := workDir(t)
	b := makeBases(t, dir)
	d := startBuildkitd(t, dir)
	setDockerConfig(t, emptyDockerConfig(t))
	return d, b, srv
}

// testAttestationsTransfer: the pushed image with its provenance is pulled
// into a fresh store, collected, copied to another repository and pushed
// from the fresh store to a third.
func testAttestationsTransfer(t *testing.T, d *bkDaemon, srv *registrytest.Server, image ocispec.Descriptor) {
	ref := srv.Host + "/oci2/att:max"
	s := regStore(t, filepath.Join(t.TempDir(), "fresh"))
	s.pullJSON(ref)
	idx := (&bkDaemon{store: s.dir}).storedIndex(t, ref)
	att := checkAttestedIndex(t, s.dir, idx, image, 1)
	want := storedStatement(t, d.store, att, 0)
	if got := storedStatement(t, s.dir, att, 0); string(got.Predicate) != string(want.Predicate) {
		t.Error("pulled provenance differs from the built one")
	}
	// gc keeps what the image's index reaches, attestations included
	s.must("gc")
	s.must("check")
	storedStatement(t, s.dir, att, 0)
	if out := s.runStore(t, d, ref); !strings.Contains(out, "hello from an oci2 image") {
		t.Errorf("pulled image printed %q", out)
	}

	copied := srv.Host + "/oci2/att-copy:max"
	s.must("copy", ref, copied)
	if st := registryStatement(t, copied); string(st.Predicate) != string(want.Predicate) {
		t.Error("copied provenance differs from the built one")
	}
	// the pulled image pushed from the fresh store to a new repository
	pushed := srv.Host + "/oci2/att-push:max"
	s.pushJSON(ref, pushed)
	if st := registryStatement(t, pushed); string(st.Predicate) != string(want.Predicate) {
		t.Error("pushed provenance differs from the built one")
	}
}

// runStore runs the image name of the store s with runc.
func (s *store) runStore(t *testing.T, d *bkDaemon, name string) string {
	t.Helper()
	return d.runStoreImage(t, s.dir, name)
}

// checkAttestedIndex checks idx lists image then one attestation manifest
// about it with n in-toto layers, and returns the attestation's manifest
// (read from the store at dir).
func checkAttestedIndex(t *testing.T, dir string, idx ocispec.Index, image ocispec.Descriptor, n int) ocispec.Manifest {
	t.Helper()
	if len(idx.Manifests) != 2 {
		t.Fatalf("index lists %d manifests, want the image and its attestations", len(idx.Manifests))
	}
	if got := idx.Manifests[0]; got.Digest != image.Digest {
		t.Errorf("image manifest %s, a build without attestations gives %s", got.Digest, image.Digest)
	}
	a := idx.Manifests[1]
	if a.MediaType != ocispec.MediaTypeImageManifest || a.Platform == nil ||
		a.Platform.OS != "unknown" || a.Platform.Architecture != "unknown" || len(a.Platform.OSFeatures) != 0 {
		t.Errorf("attestation descriptor: %s %+v", a.MediaType, a.Platform)
	}
	if a.Annotations[refTypeKey] != refTypeAttest || a.Annotations[refDigestKey] != image.Digest.String() {
		t.Errorf("attestation annotations: %v", a.Annotations)
	}
	var m ocispec.Manifest
	readJSON(t, blobPath(dir, a.Digest.String()), &m)
	if len(m.Layers) != n {
		t.Errorf("attestation manifest has %d layers, want %d", len(m.Layers), n)
	}
	return m
}

// storedStatement reads layer k of the attestation manifest att from the
// store at dir.
func storedStatement(t *testing.T, dir string, att ocispec.Manifest, k int) inTotoStatement {
	t.Helper()
	if k >= len(att.Layers) {
		t.Fatalf("attestation manifest has %d layers", len(att.Layers))
	}
	l := att.Layers[k]
	if l.MediaType != inTotoLayer || l.Annotations["in-toto.io/predicate-type"] == "" {
		t.Errorf("attestation layer: %s %v", l.MediaType, l.Annotations)
	}
	var st inTotoStatement
	readJSON(t, blobPath(dir, l.Digest.String()), &st)
	return st
}

// checkProvenance checks a SLSA v1 provenance statement about image.
func checkProvenance(t *testing.T, st inTotoStatement, image digest.Digest, mode string) {
	t.Helper()
	if st.PredicateType != slsaProvenance || len(st.Subject) == 0 ||
		st.Subject[0].Digest["sha256"] != image.Encoded() || !strings.HasPrefix(st.Subject[0].Name, "pkg:docker/") {
		t.Fatalf("statement: %s subjects %+v", st.PredicateType, st.Subject)
	}
	var p struct {
		BuildDefinition struct {
			BuildType          string         `json:"buildType"`
			InternalParameters map[string]any `json:"internalParameters"`
		} `json:"buildDefinition"`
	}
	if err := json.Unmarshal(st.Predicate, &p); err != nil {
		t.Fatal(err)
	}
	// mode=max records the LLB definition, mode=min does not
	_, hasConfig := p.BuildDefinition.InternalParameters["buildConfig"]
	if p.BuildDefinition.BuildType == "" || hasConfig != (mode == "max") {
		t.Errorf("provenance mode=%s: buildType %q, buildConfig present %v", mode, p.BuildDefinition.BuildType, hasConfig)
	}
}

// registryStatement reads the first attestation layer of ref's index from
// the registry with go-containerregistry, a stock client.
func registryStatement(t *testing.T, ref string) inTotoStatement {
	t.Helper()
	ii, im := remoteIndex(t, ref)
	for _, m := range im.Manifests {
		if m.Annotations[refTypeKey] != refTypeAttest {
			continue
		}
		img, err := ii.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		return firstStatement(t, img)
	}
	t.Fatalf("%s lists no attestation manifest", ref)
	return inTotoStatement{}
}

func firstStatement(t *testing.T, img v1.Image) inTotoStatement {
	t.Helper()
	ls, err := img.Layers()
	if err != nil || len(ls) == 0 {
		t.Fatalf("attestation layers: %d, %v", len(ls), err)
	}
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var st inTotoStatement
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// remoteIndex reads the image index ref names from a plain-HTTP registry
// with go-containerregistry, a stock client.
func remoteIndex(t *testing.T, ref string) (v1.ImageIndex, *v1.IndexManifest) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := remote.Index(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("reading %s: %v", ref, err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return ii, im
}
