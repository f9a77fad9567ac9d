package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oci2/oci2/store/registry/registrytest"
)

// scannerImage builds examples/ci/sbom-scanner (syft as a library behind
// BuildKit's scanner protocol, in its own Go module:
// docker/buildkit-syft-scanner is not served by the module proxy) as a
// static binary, has the daemon d build it FROM scratch with the stock image
// exporter and push it to srv, and returns its name for
// attest:sbom=generator=NAME.
func scannerImage(t *testing.T, d *bkDaemon, srv *registrytest.Server) string {
	t.Helper()
	requireTools(t, "go")
	ctx := t.TempDir()
	build := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-o", filepath.Join(ctx, "sbom-scanner"))
	build.Dir = "../examples/ci/sbom-scanner"
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the scanner: %v\n%s", err, out)
	}
	df := "FROM scratch\nCOPY sbom-scanner /sbom-scanner\nENTRYPOINT [\"/sbom-scanner\"]\n"
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	name := srv.Host + "/oci2/sbom-scanner:test"
	d.mustBuildctl(t, nil, ctx, "type=image,name="+name+",push=true,registry.insecure=true")
	return name
}

// TestBuildKitSBOM: `--opt attest:sbom=generator=SCANNER` with provenance
// and `--output type=oci2,push=true`: BuildKit runs the scanner image on the
// built filesystem, and the SPDX statement (first) and the provenance follow
// the image in one attestation manifest; buildx reads the SBOM back from the
// registry with the package the image's dpkg database lists (syft gives a
// dpkg package a purl only on a Debian system, hence the os-release).
func TestBuildKitSBOM(t *testing.T) {
	d, b, srv := startAttestEnv(t)
	scanner := scannerImage(t, d, srv)

	app := dockerfileContext(t, "FROM busybox\nCOPY os-release /etc/os-release\nCOPY status /var/lib/dpkg/status\nRUN echo hi > /hi\n", map[string]string{
		"os-release": "ID=debian\nVERSION_ID=\"13\"\n",
		"status":     "Package: libfoo\nStatus: install ok installed\nVersion: 1.2-3\nArchitecture: amd64\n",
	})
	plain := srv.Host + "/oci2/sbom:plain"
	d.mustBuildctl(t, b, app, "type=oci2,name="+plain)
	image := d.storedIndex(t, plain).Manifests[0]

	ref := srv.Host + "/oci2/sbom:v1"
	d.mustBuildctl(t, b, app, "type=oci2,name="+ref+",push=true",
		"--opt", "attest:sbom=generator="+scanner, "--opt", "attest:provenance=mode=max")
	att := checkAttestedIndex(t, d.store, d.storedIndex(t, ref), image, 2)
	sbom := storedStatement(t, d.store, att, 0)
	if sbom.PredicateType != spdxDocument || len(sbom.Subject) == 0 || sbom.Subject[0].Digest["sha256"] != image.Digest.Encoded() {
		t.Fatalf("first attestation: %s about %+v, want the SPDX document about %s", sbom.PredicateType, sbom.Subject, image.Digest)
	}
	if !strings.Contains(string(sbom.Predicate), "pkg:deb/debian/libfoo@1.2-3?arch=amd64") {
		t.Errorf("SBOM lacks the dpkg package: %s", clip(string(sbom.Predicate)))
	}
	checkProvenance(t, storedStatement(t, d.store, att, 1), image.Digest, "max")

	r := mustRun(t, nil, "docker-buildx", "imagetools", "inspect", "--format", "{{json .SBOM}}", ref)
	var out struct {
		SPDX json.RawMessage `json:"SPDX"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil || !strings.Contains(string(out.SPDX), "libfoo") {
		t.Errorf("buildx imagetools inspect shows no SBOM with libfoo (%v):\n%s", err, clip(r.Stdout))
	}
}
