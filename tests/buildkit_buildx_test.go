package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildxPlugin finds the docker-buildx CLI plugin: $OCI2_BUILDX, PATH, or
// docker's plugin directories.
func buildxPlugin() string {
	if p := os.Getenv("OCI2_BUILDX"); p != "" {
		return p
	}
	if p, err := exec.LookPath("docker-buildx"); err == nil {
		return p
	}
	home, _ := os.UserHomeDir()
	for _, p := range []string{filepath.Join(home, ".docker/cli-plugins/docker-buildx"),
		"/usr/local/lib/docker/cli-plugins/docker-buildx", "/usr/libexec/docker/cli-plugins/docker-buildx",
		"/usr/lib/docker/cli-plugins/docker-buildx"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// buildxBuilder makes a docker config with the buildx plugin and a remote
// builder name on d, and returns the environment that selects it.
func buildxBuilder(t *testing.T, d *bkDaemon, name string) []string {
	t.Helper()
	requireTools(t, "docker")
	plugin := buildxPlugin()
	if plugin == "" {
		unavailable(t, "docker-buildx plugin not found (set OCI2_BUILDX or put docker-buildx on PATH)")
	}
	cfg := filepath.Join(t.TempDir(), "docker-config")
	os.MkdirAll(filepath.Join(cfg, "cli-plugins"), 0o755)
	if err := os.Symlink(plugin, filepath.Join(cfg, "cli-plugins", "docker-buildx")); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_CONFIG=" + cfg}
	mustRun(t, env, "docker", "buildx", "create", "--name", name, "--driver", "remote", d.addr)
	return env
}

// testBuildx drives the daemon with a stock docker CLI and buildx plugin
// through the remote driver: build (with --annotation and
// --build-context oci-layout://), then bake of docker-bake.hcl.
func testBuildx(t *testing.T, d *bkDaemon, b *bases) {
	// buildx adds a provenance attestation by default: the exporter lists it
	// after the image (TestBuildKitAttestations)
	env := buildxBuilder(t, d, "oci2-test")

	md := filepath.Join(t.TempDir(), "md.json")
	mustRun(t, env, "docker", "buildx", "build", "--builder", "oci2-test", "--progress", "plain",
		"--build-context", "busybox=oci-layout://"+filepath.Join(b.dir, "busybox")+":latest",
		"--annotation", "index:org.opencontainers.image.title=hello",
		"--annotation", "manifest:org.opencontainers.image.description=built by buildx",
		"--output", "type=oci2,name=oci2-test/hello:buildx", "--metadata-file", md,
		filepath.Join("..", "examples", "Dockerfiles", "hello"))
	raw, _ := os.ReadFile(md)
	for _, k := range []string{`"containerimage.digest"`, `"image.name": "docker.io/oci2-test/hello:buildx"`, `"oci2.stats"`} {
		if !bytes.Contains(raw, []byte(k)) {
			t.Errorf("buildx metadata file lacks %s:\n%s", k, raw)
		}
	}
	idx := d.storedIndex(t, "docker.io/oci2-test/hello:buildx")
	if idx.Annotations["org.opencontainers.image.title"] != "hello" {
		t.Errorf("index annotations %v", idx.Annotations)
	}
	if out := d.runImage(t, "oci2-test/hello:buildx"); !strings.Contains(out, "hello from an oci2 image") {
		t.Errorf("buildx-built hello printed:\n%s", out)
	}

	// bake every example whose bases exist
	var targets []string
	for _, e := range bkExamples {
		if e.missing(b) == "" {
			targets = append(targets, e.name)
		}
	}
	cmd := exec.CommandContext(t.Context(), "docker", append([]string{"buildx", "bake", "--builder", "oci2-test",
		"--progress", "plain", "--allow", "fs.read=" + b.dir, "-f", "docker-bake.hcl"}, targets...)...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), append(env, "BASES="+b.dir, "NAME_PREFIX=oci2-bake/")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker buildx bake %v: %v\n%s", targets, err, clip(string(out)))
	}
	for _, e := range bkExamples {
		if e.missing(b) != "" {
			continue
		}
		out := d.runImage(t, "oci2-bake/"+e.name)
		if !strings.Contains(out, e.want[0]) {
			t.Errorf("baked %s printed:\n%s", e.name, out)
		}
	}
}
