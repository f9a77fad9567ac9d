package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/moby/buildkit/client/llb"
)

// TestBaseContexts uses an OCIv2 base of the daemon's store through the
// other ways a build names an image: a buildctl named context
// (--opt context:base=docker-image://...), raw LLB with the explicit
// oci2:// scheme, and docker buildx (remote driver) with FROM, with
// --build-context and with bake contexts.
func TestBaseContexts(t *testing.T) {
	d, _, p := startStoreBaseDaemon(t)
	marker := func(t *testing.T, out, path string) {
		t.Helper()
		if got, err := os.ReadFile(filepath.Join(out, path)); err != nil || string(got) != "base-marker\n" {
			t.Errorf("%s = %q, %v", path, got, err)
		}
	}
	df := "FROM base\nRUN cat /marker > /srv/nc\n"
	ctx := dockerfileContext(t, df, map[string]string{})

	t.Run("buildctl-named-context", func(t *testing.T) {
		out := t.TempDir()
		d.mustBuildctl(t, nil, ctx, "type=local,dest="+out, "--opt", "context:base=docker-image://t/base")
		marker(t, out, "srv/nc")
	})
	t.Run("llb-oci2-scheme", func(t *testing.T) {
		def, err := llb.NewState(llb.NewSource("oci2://docker.io/t/base:latest", nil, llb.Constraints{}).Output()).
			Marshal(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := llb.WriteTo(def, &buf); err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		cmd := exec.CommandContext(t.Context(), "buildctl", "--addr", d.addr, "build", "--output", "type=local,dest="+out)
		cmd.Stdin = &buf
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("buildctl build (LLB oci2://): %v\n%s", err, clip(string(o)))
		}
		marker(t, out, "marker")
	})
	t.Run("buildx", func(t *testing.T) {
		env := buildxBuilder(t, d, "oci2-bases")
		out := t.TempDir()
		mustRun(t, env, "docker", "buildx", "build", "--builder", "oci2-bases", "--progress", "plain",
			"--build-context", "base=docker-image://t/base", "--output", "type=local,dest="+out, ctx)
		marker(t, out, "srv/nc")

		plain := dockerfileContext(t, "FROM t/base\nRUN cat /marker > /srv/plain\n", map[string]string{})
		out = t.TempDir()
		mustRun(t, env, "docker", "buildx", "build", "--builder", "oci2-bases", "--progress", "plain",
			"--output", "type=local,dest="+out, plain)
		marker(t, out, "srv/plain")

		baked := t.TempDir()
		hcl := `target "app" {
  context = "."
  contexts = { base = "docker-image://t/base" }
  output = ["type=local,dest=` + baked + `"]
}
`
		if err := os.WriteFile(filepath.Join(ctx, "docker-bake.hcl"), []byte(hcl), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), "docker", "buildx", "bake", "--builder", "oci2-bases", "--progress", "plain",
			"--allow", "fs.write="+baked, "app")
		cmd.Dir = ctx
		cmd.Env = append(os.Environ(), env...)
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker buildx bake: %v\n%s", err, clip(string(o)))
		}
		marker(t, baked, "srv/nc")
	})
	if reqs := p.Requests(); len(reqs) != 0 {
		t.Errorf("registry requests %q, want none", reqs)
	}
}
