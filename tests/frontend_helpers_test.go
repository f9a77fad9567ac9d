package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// frontendName is the name `# syntax=` lines in these tests give the
// frontend image (a named context, or a name in buildkitd-oci2's store).
const frontendName = "oci2/dockerfile:1"

// startStockBuildkitd starts a stock buildkitd (scripts/build-tools.sh
// builds it from the module proxy) as root with the OCI worker only, with
// toml as its buildkitd.toml, in dir.
func startStockBuildkitd(t *testing.T, dir, toml string) *bkDaemon {
	t.Helper()
	requireTools(t, "buildkitd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := newBkDaemon(t, dir, []byte(toml))
	path, _ := exec.LookPath("buildkitd")
	d.startCmd(t, exec.Command(path, d.args("--oci-worker=true", "--containerd-worker=false")...))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("buildkitd log:\n%s", d.logTail())
		}
	})
	return d
}

var (
	frontendOnce sync.Once
	frontendErr  string
)

// frontendBinaries returns a directory holding the frontend image's two
// static binaries (dockerfile-oci2 and oci2, CGO_ENABLED=0, as `make
// frontend-bin` builds them): built once per run into TestMain's binary
// directory, which it removes, or, when the binaries come prebuilt
// (OCI2_TEST_BIN), into a directory of the test's.
func frontendBinaries(t *testing.T) string {
	t.Helper()
	if os.Getenv("OCI2_TEST_BIN") != "" {
		dir := t.TempDir()
		if msg := buildFrontend(dir); msg != "" {
			t.Fatalf("building the frontend binaries: %s", msg)
		}
		return dir
	}
	dir := filepath.Join(binDir, "frontend")
	frontendOnce.Do(func() { frontendErr = buildFrontend(dir) })
	if frontendErr != "" {
		t.Fatalf("building the frontend binaries: %s", frontendErr)
	}
	return dir
}

// buildFrontend builds the frontend's binaries into dir, returning why not.
func buildFrontend(dir string) string {
	cmd := exec.Command("go", "build", "-trimpath", "-o", dir+"/", "./frontend/cmd/dockerfile-oci2", "./cmd/oci2")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return err.Error() + "\n" + string(out)
	}
	return ""
}

// frontendLayout builds the frontend image (frontend/Dockerfile) on d as
// an OCI layout and returns its directory and manifest digest.
func frontendLayout(t *testing.T, d *bkDaemon) (string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "frontend-image")
	d.mustBuildFrontend(t, "type=oci,dest="+out+",tar=false")
	raw, err := os.ReadFile(filepath.Join(out, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("frontend image layout: %v\n%s", err, raw)
	}
	return out, idx.Manifests[0].Digest.String()
}

// mustBuildFrontend builds the frontend image on d with output.
func (d *bkDaemon) mustBuildFrontend(t *testing.T, output string) {
	t.Helper()
	mustRun(t, nil, "buildctl", "--addr", d.addr, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
		"--local", "context="+frontendBinaries(t), "--local", "dockerfile=../frontend", "--output", output)
}

// syntaxContext are buildctl flags giving the frontend image in layout
// (manifest dgst) as the named context frontendName, as `# syntax=` finds
// it on a daemon that cannot reach a registry holding it.
func syntaxContext(layout, dgst string) []string {
	return []string{"--oci-layout", "oci2fe=" + layout, "--opt", "context:" + frontendName + "=oci-layout://oci2fe@" + dgst}
}
