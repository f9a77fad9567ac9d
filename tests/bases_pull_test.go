package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/oci2/oci2/store/registry/registrytest"
)

// TestBasePullFlag: the store answers first, so a tag moved in the
// registry is not seen by a plain rebuild (no request at all); docker
// buildx build --pull (image-resolve-mode=pull) asks the registry although
// the store holds the name, and builds on the new image.
func TestBasePullFlag(t *testing.T) {
	requireRoot(t)
	requireTools(t, "runc", "buildctl", "registry", "docker")
	dir := workDir(t)
	srv := registrytest.Start(t, registrytest.Options{})
	p := registrytest.NewProxy(t, srv.URL())
	s := regStore(t, filepath.Join(dir, "src-store"))
	base := seedStoreBase(t, dir, s.dir)
	v2tree := filepath.Join(dir, "v2-tree")
	copyTree(t, base.tree, v2tree)
	if err := os.WriteFile(filepath.Join(v2tree, "v2"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.create(v2tree, "t/base2", baseConfigFlags...)
	s.must("push", "t/base", srv.Host+"/oci2/moving:latest")

	d := startBuildkitdConfig(t, dir, fmt.Sprintf("[registry.%q]\n  http = true\n", p.Host))
	env := buildxBuilder(t, d, "oci2-pull")
	ctx := dockerfileContext(t, "FROM "+p.Host+"/oci2/moving\nRUN cat /marker > /srv/m\n", map[string]string{})
	build := func(extra ...string) (hasV2 bool) {
		t.Helper()
		out := t.TempDir()
		args := append([]string{"buildx", "build", "--builder", "oci2-pull", "--progress", "plain",
			"--output", "type=local,dest=" + out}, extra...)
		mustRun(t, env, "docker", append(args, ctx)...)
		if got, err := os.ReadFile(filepath.Join(out, "srv", "m")); err != nil || string(got) != "base-marker\n" {
			t.Fatalf("/srv/m = %q, %v", got, err)
		}
		_, err := os.Stat(filepath.Join(out, "v2"))
		return err == nil
	}

	if build() {
		t.Fatalf("first build: /v2 exists, the base is v1")
	}
	s.must("push", "t/base2", srv.Host+"/oci2/moving:latest")
	n := len(p.Requests())
	if build() {
		t.Errorf("rebuild without --pull: built on the registry's new image, want the store's")
	}
	if reqs := p.Requests()[n:]; len(reqs) != 0 {
		t.Errorf("rebuild without --pull: registry requests %q, want none (store first)", reqs)
	}
	n = len(p.Requests())
	if !build("--pull") {
		t.Errorf("buildx --pull: built on the store's image, not the registry's new one")
	}
	if len(p.Requests()[n:]) == 0 {
		t.Errorf("buildx --pull asked the registry nothing")
	}
	// the store's name follows the registry: a plain build now gets v2
	n = len(p.Requests())
	if !build() {
		t.Errorf("build after --pull: not on the pulled image")
	}
	if reqs := p.Requests()[n:]; len(reqs) != 0 {
		t.Errorf("build after --pull: registry requests %q, want none", reqs)
	}
}
