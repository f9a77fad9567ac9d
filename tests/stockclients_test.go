package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/chunkstore/registry/registrytest"
)

// TestStockClients records what stock BuildKit (the daemon's own image
// puller and Dockerfile frontend, BuildKit v0.34) does with an OCIv2 image
// as a base, through a registry and through an oci-layout build context,
// and that the image converted by `oci2 export` works as a base. SPEC.md
// §6.3 quotes what it observes.
func TestStockClients(t *testing.T) {
	requireRoot(t)
	requireTools(t, "runc", "buildctl", "skopeo")
	srv := registrytest.Start(t, registrytest.Options{})
	// BuildKit talks to the registry through a proxy that records requests:
	// which blobs a stock pull fetched.
	p := registrytest.NewProxy(t, srv.URL())
	dir := workDir(t)
	b := makeBases(t, dir)
	d := startBuildkitdConfig(t, dir, fmt.Sprintf("[registry.%q]\n  http = true\n", p.Host))
	defer func() {
		if t.Failed() {
			t.Logf("buildkitd-oci2 log:\n%s", d.logTail())
		}
	}()

	// The OCIv2 image: the examples' busybox base imported into oci2.
	s := regStore(t, filepath.Join(dir, "store"))
	s.must("import", "oci:"+filepath.Join(b.dir, "busybox")+":latest", "--tag", "busybox")
	s.must("push", "busybox", srv.Host+"/oci2/busybox:v1")
	parts := partsOf(t, s.dir, "docker.io/library/busybox:latest")
	config := configOf(t, s, "busybox")
	ref := p.Host + "/oci2/busybox:v1"

	t.Run("from-registry", func(t *testing.T) {
		// The config has rootfs.diff_ids = [] and no history: the
		// Dockerfile frontend takes the image for an empty one (as it
		// takes FROM scratch) and keeps its config. Nothing but the
		// config is fetched; RUN finds no shell.
		ctx := dockerfileContext(t, "FROM "+ref+"\nRUN echo from-oci2 > /out\n", map[string]string{})
		n := len(p.Requests())
		_, r := d.buildctl(t, nil, ctx, "type=local,dest="+t.TempDir())
		if r.Err == nil {
			t.Fatal("RUN on an OCIv2 base succeeded")
		}
		mentions(t, "RUN on an OCIv2 base", r.Stderr, `exec: "/bin/sh": stat /bin/sh: no such file or directory`)
		t.Logf("FROM an OCIv2 image, RUN: %s", errorLine(r.Stderr))
		if gets := blobGets(p.Requests()[n:]); len(gets) != 1 || !strings.Contains(gets[0], config) {
			t.Errorf("blob GETs %q, want only the config", gets)
		}
	})

	t.Run("from-registry-copy-only", func(t *testing.T) {
		// The hazard: with no RUN, the build succeeds and its result
		// lacks the base altogether.
		ctx := dockerfileContext(t, "FROM "+ref+"\nCOPY x /x\n", map[string]string{"x": "x\n"})
		out := t.TempDir()
		d.mustBuildctl(t, nil, ctx, "type=local,dest="+out)
		ents, _ := os.ReadDir(out)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if strings.Join(names, " ") != "x" {
			t.Errorf("result holds %q; recorded behaviour: only x, the base silently dropped", names)
		}
	})

	t.Run("oci-layout", func(t *testing.T) {
		// The store is an OCI layout, but packs are stored as frames and
		// rebuilt on push or export: the layout lacks the pack blobs.
		idx := storeRefDigest(t, s.dir, "docker.io/library/busybox:latest")
		ctx := dockerfileContext(t, "FROM base\nRUN echo from-oci2 > /out\n", map[string]string{})
		_, r := d.buildctl(t, nil, ctx, "type=local,dest="+t.TempDir(),
			"--oci-layout", "oci2store="+s.dir, "--opt", "context:base=oci-layout://oci2store@"+idx)
		if r.Err == nil {
			t.Fatal("oci-layout build context of an oci2 store succeeded")
		}
		t.Logf("--build-context base=oci-layout://STORE: %s", errorLine(r.Stderr))
		mentions(t, "oci-layout of an oci2 store", r.Stderr, "not found")
		named := false
		for dg := range parts.blobs {
			named = named || strings.Contains(r.Stderr, "content "+dg.String()+": not found")
		}
		if !named {
			t.Errorf("the error names no blob of the image:\n%s", clip(r.Stderr))
		}
	})

	t.Run("fail-fast-variants", func(t *testing.T) {
		// What would make stock BuildKit refuse before any blob: the
		// changes SPEC.md §6.3 proposes, made by hand on a copy.
		base := srv.URL()
		putVariant(t, base, "oci2/busybox", "v1", "config-media-type", func(_ *ocispec.Descriptor, m *ocispec.Manifest) {
			m.Config.MediaType = "application/vnd.oci2.config.v1+json"
		})
		putVariant(t, base, "oci2/busybox", "v1", "os-features", func(d *ocispec.Descriptor, _ *ocispec.Manifest) {
			d.Platform.OSFeatures = []string{"org.oci2.v1"}
		})
		// Not a remedy: a config whose history has a layer is pulled,
		// every blob fetched, then refused on the count mismatch.
		editConfig := func(m *ocispec.Manifest, edit func(cfg map[string]any)) {
			var cfg map[string]any
			if err := json.Unmarshal(regGet(t, base, "/v2/oci2/busybox/blobs/"+m.Config.Digest.String(), "*/*"), &cfg); err != nil {
				t.Fatal(err)
			}
			edit(cfg)
			raw, _ := json.Marshal(cfg)
			nd := regPutBlob(t, base, "oci2/busybox", raw)
			m.Config.Digest, m.Config.Size = nd.Digest, nd.Size
		}
		putVariant(t, base, "oci2/busybox", "v1", "history", func(_ *ocispec.Descriptor, m *ocispec.Manifest) {
			editConfig(m, func(cfg map[string]any) { cfg["history"] = []map[string]string{{"created_by": "oci2"}} })
		})
		// Not a remedy either: rootfs.type is not looked at.
		putVariant(t, base, "oci2/busybox", "v1", "rootfs-type", func(_ *ocispec.Descriptor, m *ocispec.Manifest) {
			editConfig(m, func(cfg map[string]any) { cfg["rootfs"].(map[string]any)["type"] = "oci2" })
		})
		rctx := dockerfileContext(t, "FROM "+p.Host+"/oci2/busybox:rootfs-type\nCOPY x /x\n", map[string]string{"x": "x\n"})
		d.mustBuildctl(t, nil, rctx, "type=local,dest="+t.TempDir())
		ctx := dockerfileContext(t, "FROM "+p.Host+"/oci2/busybox:history\nCOPY x /x\n", map[string]string{"x": "x\n"})
		n := len(p.Requests())
		if _, r := d.buildctl(t, nil, ctx, "type=local,dest="+t.TempDir()); r.Err == nil {
			t.Errorf("history: the build succeeded")
		} else {
			mentions(t, "history", r.Stderr, "mismatched image rootfs and manifest layers")
			gets := blobGets(p.Requests()[n:])
			t.Logf("variant history: %d blob GETs (the image has %d blobs besides the config); mismatched image rootfs and manifest layers [] [...]",
				len(gets), len(parts.blobs)-1)
			if len(gets) < len(parts.blobs) {
				t.Errorf("history: %d blob GETs, recorded: every blob (%d) fetched before the refusal", len(gets), len(parts.blobs))
			}
		}

		for tag, want := range map[string]string{
			"config-media-type": "encountered unknown type application/vnd.oci2.config.v1+json; children may not be fetched",
			"os-features":       "no match for platform in manifest: not found",
		} {
			ctx := dockerfileContext(t, "FROM "+p.Host+"/oci2/busybox:"+tag+"\nCOPY x /x\n", map[string]string{"x": "x\n"})
			n := len(p.Requests())
			_, r := d.buildctl(t, nil, ctx, "type=local,dest="+t.TempDir())
			if r.Err == nil {
				t.Errorf("%s: the build succeeded", tag)
				continue
			}
			mentions(t, tag, r.Stderr, want)
			t.Logf("variant %s: %s", tag, errorLine(r.Stderr))
			if gets := blobGets(p.Requests()[n:]); len(gets) != 0 {
				t.Errorf("%s: blob GETs %q, want none", tag, gets)
			}
		}
		// skopeo still copies the config-media-type variant, digests kept.
		mustRun(t, nil, "skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
			"docker://"+srv.Host+"/oci2/busybox:config-media-type", "docker://"+srv.Host+"/oci2/copy:config-media-type")
	})

	t.Run("exported", func(t *testing.T) {
		// The positive path: oci2 export, skopeo copy, stock FROM.
		layout := filepath.Join(t.TempDir(), "layout")
		s.must("export", "busybox", "oci:"+layout+":v1")
		mustRun(t, nil, "skopeo", "copy", "--dest-tls-verify=false", "oci:"+layout+":v1", "docker://"+srv.Host+"/plain/busybox:v1")
		ctx := dockerfileContext(t, "FROM "+p.Host+"/plain/busybox:v1\nRUN echo stock-ok > /out\n", map[string]string{})
		out := t.TempDir()
		d.mustBuildctl(t, nil, ctx, "type=local,dest="+out)
		if got, err := os.ReadFile(filepath.Join(out, "out")); err != nil || string(got) != "stock-ok\n" {
			t.Errorf("RUN output %q, %v", got, err)
		}
		if _, err := os.Stat(filepath.Join(out, "bin", "busybox")); err != nil {
			t.Errorf("the base is missing from the result: %v", err)
		}
	})
}
