package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oci2/oci2/store/registry/registrytest"
)

// storeBase is an OCIv2 base made by `oci2 create` (the examples' busybox
// tree with a config) in a daemon's store.
type storeBase struct {
	tree  string // the tree it was made from
	index string // its image index digest
}

// seedStoreBase makes the base "t/base" in storeDir: busybox plus a world-
// writable /tmp and /srv, config env K=from-base, workdir /srv, user 1000,
// an entrypoint printing what the build wrote.
func seedStoreBase(t *testing.T, dir, storeDir string) storeBase {
	t.Helper()
	b := makeBases(t, dir)
	tmp := newStore(t, filepath.Join(dir, "seed-store"))
	tmp.must("import", "oci:"+filepath.Join(b.dir, "busybox")+":latest", "--tag", "busybox")
	tree := filepath.Join(dir, "base-tree")
	tmp.must("unpack", "busybox", tree)
	for _, d := range []string{"tmp", "srv"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(tree, d), 0o1777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tree, "marker"), []byte("base-marker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := newStore(t, storeDir)
	idx, _ := st.create(tree, "t/base", baseConfigFlags...)
	return storeBase{tree: tree, index: idx}
}

// baseConfigFlags are the config of t/base.
var baseConfigFlags = []string{"--env", "K=from-base", "--workdir", "/srv", "--user", "1000",
	"--entrypoint", "/bin/sh", "--entrypoint", "-c", "--entrypoint", "cat /srv/uid /srv/pwd /srv/k"}

// checkRunOnBase checks a type=local result of baseRun on base: the RUN saw
// the base's config (user, workdir, env), and the result is the base, entry
// for entry, plus the RUN's three files.
func checkRunOnBase(t *testing.T, base storeBase, out string) {
	t.Helper()
	for f, want := range map[string]string{"uid": "1000\n", "pwd": "/srv\n", "k": "from-base\n"} {
		got, err := os.ReadFile(filepath.Join(out, "srv", f))
		if err != nil || string(got) != want {
			t.Errorf("/srv/%s = %q, %v; want %q", f, got, err, want)
		}
	}
	got := snapshot(t, out)
	for _, f := range []string{"srv/uid", "srv/pwd", "srv/k"} {
		if got[f] == nil {
			t.Errorf("%s missing", f)
		}
		delete(got, f)
	}
	want := snapshot(t, base.tree)
	delete(want, "srv")
	delete(got, "srv")
	// What any RUN leaves, on a stock base too: runc's empty mount points,
	// and /etc touched by its hosts and resolv.conf mounts.
	for _, mp := range []string{"dev", "proc", "sys"} {
		if n := got[mp]; n != nil && want[mp] == nil && n.isDir {
			delete(got, mp)
		}
	}
	if got["etc"] != nil && want["etc"] != nil {
		got["etc"].MtimeNs = want["etc"].MtimeNs
	}
	compareTrees(t, want, got, compareOptions{SkipRoot: true})
}

// baseRun is a RUN that records the config it ran with in /srv (the
// base's workdir).
const baseRun = "RUN id -u > uid && pwd > pwd && echo \"$K\" > k\n"

// noRegistryConfig is a buildkitd.toml sending docker.io to a recording
// proxy: any registry request a build makes is seen.
func noRegistryConfig(t *testing.T) (*registrytest.Proxy, string) {
	srv := registrytest.Start(t, registrytest.Options{})
	p := registrytest.NewProxy(t, srv.URL())
	return p, fmt.Sprintf("[registry.\"docker.io\"]\n  mirrors = [%q]\n[registry.%q]\n  http = true\n", p.Host, p.Host)
}

// startStoreBaseDaemon starts buildkitd-oci2 with t/base in its store and
// docker.io sent to a recording proxy.
func startStoreBaseDaemon(t *testing.T) (*bkDaemon, storeBase, *registrytest.Proxy) {
	t.Helper()
	requireRoot(t)
	requireTools(t, "runc", "buildctl", "registry")
	dir := workDir(t)
	p, toml := noRegistryConfig(t)
	d := newBkDaemon(t, dir, []byte(toml))
	base := seedStoreBase(t, dir, d.store)
	d.start(t)
	return d, base, p
}

// TestBaseFromStore builds FROM an OCIv2 image the daemon's oci2 store
// holds, with stock buildctl and the stock dockerfile.v0 frontend: the
// base's config reaches the RUN (user, workdir, env), the result is the
// base plus the RUN's output, the type=oci2 result runs under runc with
// the base's entrypoint, and no registry is asked.
func TestBaseFromStore(t *testing.T) {
	d, base, p := startStoreBaseDaemon(t)

	df := "FROM t/base\n" + baseRun
	ctx := dockerfileContext(t, df, map[string]string{})
	out := filepath.Join(t.TempDir(), "out")
	d.mustBuildctl(t, nil, ctx, "type=local,dest="+out)
	checkRunOnBase(t, base, out)

	m := d.mustBuildctl(t, nil, ctx, "type=oci2,name=t/app")
	if s := statsOf(t, m); len(s) != 1 {
		t.Fatalf("oci2.stats: %+v", s)
	}
	if got := d.runImage(t, "t/app"); got != "1000\n/srv\nfrom-base\n" {
		t.Errorf("t/app printed %q", got)
	}
	if reqs := p.Requests(); len(reqs) != 0 {
		t.Errorf("registry requests %q, want none", reqs)
	}
}

// TestBaseFromStoreStages uses the store's base by index digest and by
// manifest digest, in COPY --from= and RUN --mount=from=, and checks that
// with --oci2-base-images=off the same build fails as stock BuildKit does.
func TestBaseFromStoreStages(t *testing.T) {
	d, base, p := startStoreBaseDaemon(t)
	manifest := d.storedIndex(t, "docker.io/t/base:latest").Manifests[0].Digest.String()

	df := strings.Join([]string{
		"FROM t/base@" + manifest,
		"COPY --from=t/base@" + base.index + " /marker /copied",
		"RUN --mount=from=t/base,target=/m cat /m/marker > /srv/mounted",
		"",
	}, "\n")
	ctx := dockerfileContext(t, df, map[string]string{})
	out := filepath.Join(t.TempDir(), "out")
	d.mustBuildctl(t, nil, ctx, "type=local,dest="+out)
	for _, f := range []string{"copied", "srv/mounted", "marker"} {
		if got, err := os.ReadFile(filepath.Join(out, f)); err != nil || string(got) != "base-marker\n" {
			t.Errorf("%s = %q, %v", f, got, err)
		}
	}
	if reqs := p.Requests(); len(reqs) != 0 {
		t.Errorf("registry requests %q, want none", reqs)
	}

	// The stock behaviour, kept behind the flag: the store is not looked
	// at, and docker.io (the proxy) is asked.
	d.stop()
	d.flags = []string{"--oci2-base-images=off"}
	d.start(t)
	if _, r := d.buildctl(t, nil, ctx, "type=local,dest="+t.TempDir()); r.Err == nil {
		t.Errorf("with --oci2-base-images=off, a build FROM a store-only image succeeded")
	}
	if len(p.Requests()) == 0 {
		t.Errorf("with --oci2-base-images=off, no registry request")
	}
}
