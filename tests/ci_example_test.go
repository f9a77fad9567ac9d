package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store/registry/registrytest"
)

// ciJob is one run of examples/ci/ci-build.sh.
type ciJob struct {
	stderr           string
	elapsed          time.Duration
	newRegistryBytes int64 // blobs the registry gained: image, attestations, cache
	newImageBytes    int64 // those of them the image's graph references
}

// ciRunner runs examples/ci/ci-build.sh as a CI runner would: a fresh
// buildkitd-oci2 and an empty docker config every time.
type ciRunner struct {
	srv     *registrytest.Server
	b       *bases
	scanner string
}

func (c *ciRunner) run(t *testing.T, app, repo, tag, outputType string) ciJob {
	t.Helper()
	dir := workDir(t)
	d := startBuildkitd(t, dir)
	defer d.stop()
	before := registryBlobs(t, c.srv.Dir)
	cmd := exec.CommandContext(t.Context(), "sh", "../examples/ci/ci-build.sh")
	cmd.Env = append(os.Environ(), "BUILDKIT_HOST="+d.addr, "REGISTRY="+c.srv.Host, "REPO="+repo, "TAG="+tag,
		"APP="+app, "BASES="+c.b.dir, "SBOM_SCANNER="+c.scanner, "OUTPUT_TYPE="+outputType,
		"DOCKER_CONFIG="+emptyDockerConfig(t), "METADATA="+filepath.Join(dir, "metadata.json"))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	job := ciJob{stderr: string(out), elapsed: time.Since(start)}
	if err != nil {
		t.Fatalf("ci-build.sh %s:%s (%s): %v\n%s\n%s", repo, tag, outputType, err, clip(string(out)), d.logTail())
	}
	image := imageGraph(t, fmt.Sprintf("%s/%s:%s", c.srv.Host, repo, tag))
	for dg, n := range registryBlobs(t, c.srv.Dir) {
		if _, ok := before[dg]; !ok {
			job.newRegistryBytes += n
			if image[dg.String()] {
				job.newImageBytes += n
			}
		}
	}
	return job
}

// imageGraph lists the digests of ref's index, manifests, configs and
// layers (attestations included) in the registry, read with
// go-containerregistry.
func imageGraph(t *testing.T, ref string) map[string]bool {
	t.Helper()
	ii, im := remoteIndex(t, ref)
	dg, _ := ii.Digest()
	out := map[string]bool{dg.String(): true}
	for _, d := range im.Manifests {
		out[d.Digest.String()] = true
		img, err := ii.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		out[m.Config.Digest.String()] = true
		for _, l := range m.Layers {
			out[l.Digest.String()] = true
		}
	}
	return out
}

// ciApp writes commit n of the example application into dir: the
// Dockerfile of examples/ci/app, 8 MiB of dependencies that never change,
// 4 MiB of sources of which commit 2 changes one file, and a version.
func ciApp(t *testing.T, dir string, commit int) {
	t.Helper()
	df, err := os.ReadFile("../examples/ci/app/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		writeRandom(t, filepath.Join(dir, "deps", fmt.Sprintf("lib%d.so", i)), 1<<20, uint64(500+i))
	}
	for i := range 16 {
		seed := uint64(600 + i)
		if commit >= 2 && i == 3 {
			seed += 1000
		}
		writeRandom(t, filepath.Join(dir, "src", fmt.Sprintf("mod%d.bin", i)), 256<<10, seed)
	}
	if err := os.WriteFile(filepath.Join(dir, "src", "version"), []byte(fmt.Sprintf("commit %d\n", commit)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCIExample runs examples/ci/ci-build.sh (docker buildx bake against
// buildkitd-oci2: push, provenance, SBOM, registry cache) for two commits
// of an application, each on a fresh daemon: both images reach the
// registry as OCIv2 images with their provenance and SBOM, and a fresh
// store pulls and runs both: commit 2 has the dependency step's output of
// commit 1, which the second runner took from the registry cache. The same job with OUTPUT_TYPE=image (layered
// tar+gzip) is run alongside for the figures it logs.
func TestCIExample(t *testing.T) {
	requireRoot(t)
	requireTools(t, "runc", "buildctl", "docker-buildx", "go")
	srv := registrytest.Start(t, registrytest.Options{})
	b := makeBases(t, workDir(t))
	setDockerConfig(t, emptyDockerConfig(t))
	c := &ciRunner{srv: srv, b: b, scanner: srv.Host + "/oci2-ci/sbom-scanner:latest"}
	{
		d := startBuildkitd(t, workDir(t))
		mustRun(t, []string{"BUILDKIT_HOST=" + d.addr, "SBOM_SCANNER=" + c.scanner}, "sh", "../examples/ci/build-scanner.sh")
		d.stop()
	}

	app := t.TempDir()
	jobs := map[string][2]ciJob{}
	for _, out := range []string{"oci2", "image"} {
		repo := "oci2-ci/app-" + out
		var js [2]ciJob
		for commit := 1; commit <= 2; commit++ {
			ciApp(t, app, commit)
			js[commit-1] = c.run(t, app, repo, fmt.Sprintf("commit%d", commit), out)
		}
		jobs[out] = js
	}

	for commit := 1; commit <= 2; commit++ {
		checkCIImage(t, fmt.Sprintf("%s/oci2-ci/app-oci2:commit%d", srv.Host, commit))
	}
	// A deployment pulls both into a fresh store and runs them: commit 2
	// carries commit 1's dependency step (its random build id), taken from
	// the registry cache by a daemon that never ran it.
	s := regStore(t, filepath.Join(t.TempDir(), "deploy"))
	var outs []string
	for commit := 1; commit <= 2; commit++ {
		ref := fmt.Sprintf("%s/oci2-ci/app-oci2:commit%d", srv.Host, commit)
		s.pullJSON(ref)
		out := s.runStore(t, &bkDaemon{dir: t.TempDir()}, ref)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || lines[0] != fmt.Sprintf("commit %d", commit) {
			t.Fatalf("commit %d printed %q", commit, out)
		}
		outs = append(outs, lines[2])
	}
	if outs[0] != outs[1] {
		t.Errorf("the dependency step ran again on the second runner (build ids %q, %q): the registry cache was not used\n%s",
			outs[0], outs[1], clip(jobs["oci2"][1].stderr))
	}
	o, l := jobs["oci2"], jobs["image"]
	for i, run := range []string{"first run", "second run (commit 2, fresh daemon)"} {
		t.Logf("CI job, %s: oci2 %.1f s, registry gained %d bytes (image and attestations %d); layered tar+gzip %.1f s, %d bytes (%d)",
			run, o[i].elapsed.Seconds(), o[i].newRegistryBytes, o[i].newImageBytes,
			l[i].elapsed.Seconds(), l[i].newRegistryBytes, l[i].newImageBytes)
	}
}

// checkCIImage reads ref from the registry with go-containerregistry: an
// OCIv2 image followed by one attestation manifest with the SBOM and the
// provenance.
func checkCIImage(t *testing.T, ref string) {
	t.Helper()
	ii, im := remoteIndex(t, ref)
	if len(im.Manifests) != 2 || im.Manifests[0].Platform == nil ||
		!slices.Contains(im.Manifests[0].Platform.OSFeatures, format.PlatformFeature) ||
		im.Manifests[1].Annotations[refTypeKey] != refTypeAttest {
		t.Fatalf("%s: index %+v, want an OCIv2 image and its attestations", ref, im.Manifests)
	}
	att, err := ii.Image(im.Manifests[1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := att.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var preds []string
	for _, l := range m.Layers {
		preds = append(preds, l.Annotations["in-toto.io/predicate-type"])
	}
	if !slices.Contains(preds, spdxDocument) || !slices.Contains(preds, slsaProvenance) {
		t.Errorf("%s: attestations %v, want the SBOM and the provenance", ref, preds)
	}
}
