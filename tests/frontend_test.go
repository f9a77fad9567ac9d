package tests

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oci2/oci2/store/registry/registrytest"
)

// TestFrontendStock builds on an OCIv2 base in a registry on 127.0.0.1
// with a real stock buildkitd (built from the module proxy) through the
// `# syntax=` frontend image, given as an oci-layout named context: the
// result is the base plus the RUN's files, the RUN saw the base's config,
// and the stock type=oci export runs under runc. Without the frontend the
// stock error stands; through it, with the daemon's ImageBlob capability
// hidden or the registry refusing blobs, the build fails with the error
// that names the image as OCIv2 and gives the ways out.
func TestFrontendStock(t *testing.T) {
	requireRoot(t)
	requireTools(t, "runc", "buildctl", "registry", "buildkitd")
	dir := workDir(t)
	srv := registrytest.Start(t, registrytest.Options{})
	p := registrytest.NewProxy(t, srv.URL())
	s := regStore(t, filepath.Join(dir, "src-store"))
	base := seedStoreBase(t, dir, s.dir)
	s.must("push", "t/base", srv.Host+"/oci2/base:v1")
	d := startStockBuildkitd(t, filepath.Join(dir, "stock"), fmt.Sprintf("[registry.%q]\n  http = true\n", p.Host))
	layout, fdg := frontendLayout(t, d)
	ref := p.Host + "/oci2/base:v1"
	ctx := dockerfileContext(t, "# syntax="+frontendName+"\nFROM "+ref+"\n"+baseRun, map[string]string{})
	fe := syntaxContext(layout, fdg)

	t.Run("without-frontend", func(t *testing.T) {
		plain := dockerfileContext(t, "FROM "+ref+"\n"+baseRun, map[string]string{})
		_, r := d.buildctl(t, nil, plain, "type=local,dest="+t.TempDir())
		if r.Err == nil {
			t.Fatal("a stock build FROM an OCIv2 image succeeded")
		}
		mentions(t, "stock", r.Stderr, "no match for platform in manifest")
	})
	wayOut := []string{ref + " is an OCIv2 image", "buildkitd-oci2", "oci2 export", "--build-context NAME=oci-layout://DIR"}
	t.Run("capability-missing", func(t *testing.T) {
		_, r := d.buildctl(t, nil, ctx, "type=local,dest="+t.TempDir(), append(fe, "--opt", "oci2-hide-caps=source.imageblob")...)
		if r.Err == nil {
			t.Fatal("the build succeeded without the source.imageblob capability")
		}
		for _, w := range append(wayOut, "lacks the LLB capability source.imageblob") {
			mentions(t, "capability missing", r.Stderr, w)
		}
		t.Logf("capability missing: %s", errorLine(r.Stderr))
	})
	t.Run("packs-refused", func(t *testing.T) {
		// The registry answers for the image (index, manifest, config)
		// but refuses its packs.
		config := configOf(t, s, "t/base")
		var faults []*registrytest.Fault
		for dg := range partsOf(t, s.dir, "docker.io/t/base:latest").blobs {
			if dg.String() != config {
				faults = append(faults, p.Add(registrytest.Fault{Method: "GET", Path: "/blobs/" + dg.String(), Kind: registrytest.Status, Status: 403}))
			}
		}
		defer p.Clear()
		_, r := d.buildctl(t, nil, ctx, "type=local,dest="+t.TempDir(), fe...)
		if r.Err == nil {
			t.Fatal("the build succeeded with every pack refused")
		}
		for _, w := range append(wayOut, "fetching its packs through this BuildKit daemon", "403") {
			mentions(t, "packs refused", r.Stderr, w)
		}
		hits := 0
		for _, f := range faults {
			hits += p.Hits(f)
		}
		if hits == 0 {
			t.Errorf("no pack was asked for")
		}
		t.Logf("packs refused: %s", errorLine(r.Stderr))
	})
	t.Run("oci-layout-context", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		_, r := d.buildctl(t, nil, ctx, "type=local,dest="+out, fe...)
		if r.Err != nil {
			t.Fatalf("# syntax= build: %v\n%s", r.Err, clip(r.Stderr))
		}
		checkRunOnBase(t, base, out)
		if !strings.Contains(r.Stderr, "[oci2] unpack "+p.Host+"/oci2/base@") {
			t.Errorf("no unpack step in the progress:\n%s", clip(r.Stderr))
		}
		// The stock exporter's image runs, with the base's entrypoint.
		img := filepath.Join(t.TempDir(), "img")
		d.mustBuildctl(t, nil, ctx, "type=oci,dest="+img+",tar=false,name=t/app", fe...)
		rs := newStore(t, filepath.Join(t.TempDir(), "run-store"))
		rs.must("import", "oci:"+img+":latest", "--tag", "t/app")
		if got := d.runStoreImage(t, rs.dir, "t/app"); got != "1000\n/srv\nfrom-base\n" {
			t.Errorf("the exported image printed %q", got)
		}
	})
	t.Run("by-manifest-digest", func(t *testing.T) {
		// Stock takes the manifest for an empty image (SPEC.md §6.3);
		// the frontend reads it and builds on the base.
		mctx := dockerfileContext(t, "# syntax="+frontendName+"\nFROM "+p.Host+"/oci2/base@"+manifestOf(t, s, "t/base")+"\n"+baseRun, map[string]string{})
		out := filepath.Join(t.TempDir(), "out")
		d.mustBuildctl(t, nil, mctx, "type=local,dest="+out, fe...)
		checkRunOnBase(t, base, out)
	})
	t.Run("from-registry", func(t *testing.T) {
		fref := p.Host + "/oci2/dockerfile:1"
		d.mustBuildFrontend(t, "type=image,name="+fref+",push=true")
		rctx := dockerfileContext(t, "# syntax="+fref+"\nFROM "+ref+"\n"+baseRun, map[string]string{})
		out := filepath.Join(t.TempDir(), "out")
		d.mustBuildctl(t, nil, rctx, "type=local,dest="+out)
		checkRunOnBase(t, base, out)
	})
}

// TestFrontendBuildx drives the frontend on a stock buildkitd with docker
// buildx (remote driver) and bake: the frontend image and the OCIv2 base
// both as --build-context / bake contexts, which buildx forwards only to a
// frontend whose image declares the contexts capability (the labels of
// BuildKit's own Dockerfile frontend image).
func TestFrontendBuildx(t *testing.T) {
	requireRoot(t)
	requireTools(t, "runc", "buildctl", "registry", "buildkitd")
	dir := workDir(t)
	srv := registrytest.Start(t, registrytest.Options{})
	s := regStore(t, filepath.Join(dir, "src-store"))
	base := seedStoreBase(t, dir, s.dir)
	s.must("push", "t/base", srv.Host+"/oci2/base:v1")
	d := startStockBuildkitd(t, filepath.Join(dir, "stock"), "")
	layout, _ := frontendLayout(t, d)
	env := buildxBuilder(t, d, "oci2-frontend")
	ctx := dockerfileContext(t, "# syntax="+frontendName+"\nFROM base\n"+baseRun, map[string]string{})
	contexts := map[string]string{
		frontendName: "oci-layout://" + layout + ":latest",
		"base":       "docker-image://" + srv.Host + "/oci2/base:v1",
	}

	out := filepath.Join(t.TempDir(), "out")
	args := []string{"buildx", "build", "--builder", "oci2-frontend", "--progress", "plain", "--output", "type=local,dest=" + out}
	for k, v := range contexts {
		args = append(args, "--build-context", k+"="+v)
	}
	mustRun(t, env, "docker", append(args, ctx)...)
	checkRunOnBase(t, base, out)

	baked := filepath.Join(t.TempDir(), "baked")
	hcl := fmt.Sprintf("target \"app\" {\n  context = %q\n  contexts = {\n    %q = %q\n    base = %q\n  }\n  output = [\"type=local,dest=%s\"]\n}\n",
		ctx, frontendName, contexts[frontendName], contexts["base"], baked)
	hclDir := t.TempDir()
	writeFiles(t, hclDir, map[string]string{"docker-bake.hcl": hcl})
	file := filepath.Join(hclDir, "docker-bake.hcl")
	mustRun(t, env, "docker", "buildx", "bake", "--builder", "oci2-frontend", "--progress", "plain", "-f", file,
		"--allow", "fs.read=/", "--allow", "fs.write=/", "app")
	checkRunOnBase(t, base, baked)
}

// TestFrontendOnOCI2Daemon stores the frontend image as OCIv2 in
// buildkitd-oci2's store (type=oci2) and builds with `# syntax=` naming it:
// the daemon resolves the frontend image and the base from its store, with
// no registry request, and the frontend passes through (no fetch or unpack
// step of its own).
func TestFrontendOnOCI2Daemon(t *testing.T) {
	d, base, p := startStoreBaseDaemon(t)
	d.mustBuildFrontend(t, "type=oci2,name="+frontendName)
	ctx := dockerfileContext(t, "# syntax="+frontendName+"\nFROM t/base\n"+baseRun, map[string]string{})
	out := filepath.Join(t.TempDir(), "out")
	_, r := d.buildctl(t, nil, ctx, "type=local,dest="+out)
	if r.Err != nil {
		t.Fatalf("# syntax=%s on buildkitd-oci2: %v\n%s", frontendName, r.Err, clip(r.Stderr))
	}
	checkRunOnBase(t, base, out)
	if strings.Contains(r.Stderr, "[oci2] unpack") || strings.Contains(r.Stderr, "[oci2] fetch") {
		t.Errorf("the frontend did not pass through on buildkitd-oci2:\n%s", clip(r.Stderr))
	}
	if reqs := p.Requests(); len(reqs) != 0 {
		t.Errorf("registry requests %q, want none", reqs)
	}
}
