package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oci2/oci2/internal/testenv"
	"github.com/oci2/oci2/store/registry/registrytest"
)

// lazyCtd is a containerd with oci2-snapshotter on an empty store and a
// registry (behind the recording proxy, with token authentication) holding an OCIv2 image of
// helloTree, /bin/probe and about 40 MB of incompressible files under
// /data.
type lazyCtd struct {
	*ctdOCI2
	proxy  *registrytest.Proxy
	ref    string // the image in the registry, through the proxy
	src    string // its source tree
	stored int64  // its stored bytes
}

func startLazyCtd(t *testing.T, snArgs ...string) *lazyCtd {
	t.Helper()
	requireRoot(t)
	requireTools(t, "containerd", "containerd-shim-runc-v2", "ctr", "runc")
	testenv.RequireFUSE(t)
	dir := workDir(t)
	l := &lazyCtd{src: helloTree(t, filepath.Join(dir, "src"))}
	buildStatic(t, probeSource, filepath.Join(l.src, "bin/probe"))
	os.Chmod(filepath.Join(l.src, "tmp"), 0o1777) // the image's user is not root
	writeMediumTree(t, filepath.Join(l.src, "data"), 41, 200)
	a := regStore(t, filepath.Join(dir, "a"))
	_, out := a.create(l.src, "app:v1", helloConfig(t, a)...)
	l.stored = num(out, "stored_bytes")
	srv := registrytest.Start(t, registrytest.Options{})
	l.proxy = registrytest.NewProxy(t, srv.URL())
	l.ref = l.proxy.Host + "/oci2/app:v1"
	a.pushJSON("app:v1", l.ref)
	// From here the registry wants a bearer token: the import and the
	// snapshotter's mounts log in with the docker config of their
	// environment, as `oci2 pull` does.
	l.proxy.RequireBearer("ci", "hunter2")
	b := newStore(t, filepath.Join(dir, "b"))
	b.env = dockerEnv(registrytest.DockerConfig(t, l.proxy.Host, "ci", "hunter2"))
	l.ctdOCI2 = startOCI2Containerd(t, dir, b, snArgs)
	return l
}

// runOut runs a container of the image with args and returns its output,
// failing the test when ctr fails.
func (l *lazyCtd) runOut(t *testing.T, id string, args ...string) string {
	t.Helper()
	r := l.ctr(append([]string{"run", "--rm", "--snapshotter", "oci2", l.ref, ctrID(id)}, args...)...)
	if r.Err != nil {
		t.Fatalf("ctr run %s %q: %v\nstdout: %s\nstderr: %s\nsnapshotter log:\n%s", id, args, r.Err, r.Stdout, r.Stderr,
			clip(l.sn.logText()))
	}
	return r.Stdout
}

// readOut is what probe prints for reading the source's file p whole.
func (l *lazyCtd) readOut(t *testing.T, p string) string {
	fi, err := os.Stat(filepath.Join(l.src, p))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("read=%d err=<nil>", fi.Size())
}

const helloOut = "hello from oci2 uid=1234 gid=2345 cwd=/work marker=true args=[\"a b\" \"c\"] env=yes"

// TestContainerdLazyRegistry: `oci2 containerd import REF` of an image the
// store lacks imports it straight from its registry (which wants a bearer
// token, got with the docker config's credentials); `ctr run` starts it,
// the snapshotter's mount fetching only what the container reads: the
// registry sends a small part of the image's stored bytes, and a file read
// in a container has the source's size.
func TestContainerdLazyRegistry(t *testing.T) {
	l := startLazyCtd(t)
	l.importImage(t, l.ref)
	afterImport := l.proxy.BytesSent()
	if out := l.runOut(t, "lazy1"); !strings.Contains(out, helloOut) {
		t.Fatalf("ctr run: %q, want %q", out, helloOut)
	}
	sent := l.proxy.BytesSent()
	t.Logf("registry sent %d bytes (import %d, first run %d) of an image of %d stored bytes (%.1f%%)",
		sent, afterImport, sent-afterImport, l.stored, 100*float64(sent)/float64(l.stored))
	if sent-afterImport == 0 {
		t.Errorf("the run fetched nothing from the registry: the image was not lazy")
	}
	if sent > l.stored/5 {
		t.Errorf("importing and running the image fetched %d bytes of %d stored, want at most a fifth", sent, l.stored)
	}
	mounts := fuseMountsUnder(l.sn.root)
	if len(mounts) != 1 {
		t.Fatalf("FUSE mounts under the snapshotter root %q, want one", mounts)
	}
	st := decodeJSON(t, l.s.must("mount", "--status", mounts[0]).Stdout)
	if lazy, _ := st["lazy"].(bool); !lazy {
		t.Errorf("the snapshotter's mount is not lazy: %v", st)
	}
	if out := l.runOut(t, "lazy2", "/bin/probe", "read", "/data/d03/f0003"); !strings.Contains(out, l.readOut(t, "data/d03/f0003")) {
		t.Errorf("reading /data/d03/f0003 in a container: %q, want %q", out, l.readOut(t, "data/d03/f0003"))
	}
}

// TestContainerdLazyFetchAll: with --fetch-all the snapshotter's lazy
// mounts pull the rest of the image in the background while containers
// run; once done, a container reads any file with the registry stalled,
// and the store names the image.
func TestContainerdLazyFetchAll(t *testing.T) {
	l := startLazyCtd(t, "--fetch-all", "--read-timeout", lazyReadTimeout)
	l.importImage(t, l.ref)
	if out := l.runOut(t, "all1"); !strings.Contains(out, helloOut) {
		t.Fatalf("ctr run: %q, want %q", out, helloOut)
	}
	mounts := fuseMountsUnder(l.sn.root)
	if len(mounts) != 1 {
		t.Fatalf("FUSE mounts %q, want one", mounts)
	}
	if v := waitStatus(t, l.s, mounts[0], "fetch_all"); v != "done" {
		t.Fatalf("fetch-all: %s", v)
	}
	l.proxy.Add(registrytest.Fault{Kind: registrytest.Stall})
	for _, p := range []string{"data/d09/f0009", "data/d16/f0016"} {
		if out := l.runOut(t, "all-"+filepath.Base(p), "/bin/probe", "read", "/"+p); !strings.Contains(out, l.readOut(t, p)) {
			t.Errorf("reading /%s with the registry stalled after fetch-all: %q, want %q", p, out, l.readOut(t, p))
		}
	}
	l.proxy.Clear()
	if out := l.s.must("images").Stdout; !strings.Contains(out, "oci2/app") {
		t.Errorf("after fetch-all the store does not name the image:\n%s", out)
	}
}

// TestContainerdLazyTLS: an image in a registry with htpasswd auth over
// TLS (its own CA) is imported and run: the import and the snapshotter's
// mounts trust the CA given with --ca-cert and log in with the docker
// config of their environment.
func TestContainerdLazyTLS(t *testing.T) {
	requireRoot(t)
	requireTools(t, "containerd", "containerd-shim-runc-v2", "ctr", "runc")
	testenv.RequireFUSE(t)
	srv := registrytest.Start(t, registrytest.Options{TLS: true, Users: map[string]string{"ci": "hunter2"}})
	dir := workDir(t)
	auth := dockerEnv(registrytest.DockerConfig(t, srv.Host, "ci", "hunter2"))
	a := newStore(t, filepath.Join(dir, "a"))
	a.env = auth
	a.create(helloTree(t, filepath.Join(dir, "src")), "hello:v1", helloConfig(t, a)...)
	ref := srv.Host + "/secure/hello:v1"
	a.must("push", "--ca-cert", srv.CAFile, "hello:v1", ref)

	b := newStore(t, filepath.Join(dir, "b"))
	b.env = auth
	e := startOCI2Containerd(t, dir, b, []string{"--ca-cert", srv.CAFile})
	e.importImage(t, ref, "--ca-cert", srv.CAFile)
	r := e.ctr("run", "--rm", "--snapshotter", "oci2", ref, ctrID("tls1"))
	if r.Err != nil || !strings.Contains(r.Stdout, helloOut) {
		t.Fatalf("ctr run: %v\nstdout: %s\nstderr: %s\nsnapshotter log:\n%s", r.Err, r.Stdout, r.Stderr, clip(e.sn.logText()))
	}
	ms := fuseMountsUnder(e.sn.root)
	if len(ms) != 1 {
		t.Fatalf("FUSE mounts %q, want one", ms)
	}
	if st := decodeJSON(t, b.must("mount", "--status", ms[0]).Stdout); st["lazy"] != true {
		t.Errorf("the mount is not lazy: %v", st)
	}
}
