package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// storeConfig reads the image config of name from the store at dir.
func storeConfig(t *testing.T, dir, name string) dockerspec.DockerOCIImage {
	t.Helper()
	d := configOf(t, newStore(t, dir), name)
	raw, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &img); err != nil {
		t.Fatalf("config of %s: %v\n%s", name, err, raw)
	}
	return img
}

// TestBaseDockerConfig checks that every config field of an OCIv2 base
// reaches the build, Docker's own included: an image built FROM t/base
// with SHELL, HEALTHCHECK and ONBUILD keeps them in its type=oci2 config
// (the exporter dropped them before), a build FROM that image runs its
// ONBUILD trigger, and `oci2 export` then `oci2 import` keep them too.
func TestBaseDockerConfig(t *testing.T) {
	d, _, _ := startStoreBaseDaemon(t)
	mid := dockerfileContext(t, strings.Join([]string{
		"FROM t/base",
		`SHELL ["/bin/sh", "-c"]`,
		"HEALTHCHECK --retries=3 CMD true",
		"ONBUILD RUN echo onbuild > /srv/onbuild",
		"LABEL l=v",
		"STOPSIGNAL SIGINT",
		"EXPOSE 8080",
		"",
	}, "\n"), map[string]string{})
	d.mustBuildctl(t, nil, mid, "type=oci2,name=t/mid")
	check := func(where string, img dockerspec.DockerOCIImage) {
		t.Helper()
		c := img.Config
		if c.Healthcheck == nil || c.Healthcheck.Retries != 3 || len(c.OnBuild) != 1 || len(c.Shell) != 2 {
			t.Errorf("%s: Docker fields lost: healthcheck %+v onbuild %q shell %q", where, c.Healthcheck, c.OnBuild, c.Shell)
		}
		if c.Labels["l"] != "v" || c.StopSignal != "SIGINT" || len(c.ExposedPorts) != 1 || c.WorkingDir != "/srv" ||
			c.User != "1000" || len(c.Entrypoint) != 3 || !strings.Contains(strings.Join(c.Env, " "), "K=from-base") {
			t.Errorf("%s: config fields lost: %+v", where, c)
		}
	}
	check("type=oci2 export", storeConfig(t, d.store, "t/mid"))

	app := dockerfileContext(t, "FROM t/mid\nRUN echo app > /srv/app\n", map[string]string{})
	out := t.TempDir()
	d.mustBuildctl(t, nil, app, "type=local,dest="+out)
	if got, err := os.ReadFile(filepath.Join(out, "srv", "onbuild")); err != nil || string(got) != "onbuild\n" {
		t.Errorf("ONBUILD of the OCIv2 base did not run: %q, %v", got, err)
	}

	layout := filepath.Join(t.TempDir(), "layout")
	newStore(t, d.store).must("export", "t/mid", "oci:"+layout+":v1")
	other := filepath.Join(t.TempDir(), "store")
	newStore(t, other).must("import", "oci:"+layout+":v1", "--tag", "mid")
	check("oci2 export + import", storeConfig(t, other, "mid"))
}
