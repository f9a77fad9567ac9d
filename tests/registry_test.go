package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oci2/oci2/store/registry/registrytest"
)

// regStore is a store whose oci2 commands see no user credentials.
func regStore(t *testing.T, dir string) *store {
	s := newStore(t, dir)
	s.env = dockerEnv(emptyDockerConfig(t))
	return s
}

// proxied is a registry behind a fault-injecting proxy, and store a
// holding app:v1, a medium tree of nfiles files from seed.
type proxied struct {
	dir   string
	proxy *registrytest.Proxy
	a     *store
	ref   string // app:v1 through the proxy (not pushed yet)
}

func newProxied(t *testing.T, seed uint64, nfiles int) proxied {
	t.Helper()
	srv := registrytest.Start(t, registrytest.Options{})
	p := proxied{dir: workDir(t), proxy: registrytest.NewProxy(t, srv.URL())}
	src := filepath.Join(p.dir, "src")
	writeMediumTree(t, src, seed, nfiles)
	p.a = regStore(t, filepath.Join(p.dir, "a"))
	p.a.create(src, "app:v1")
	p.ref = p.proxy.Host + "/oci2/app:v1"
	return p
}

// TestRegistryRoundTrip: push then pull into another store gives the same
// digest, a store check accepts, and both unpack to the source tree.
func TestRegistryRoundTrip(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{})
	dir := workDir(t)
	src := filepath.Join(dir, "src")
	writeSmallTree(t, src)
	writeMediumTree(t, filepath.Join(src, "medium"), 5, 60)
	want := snapshot(t, src)

	a := regStore(t, filepath.Join(dir, "a"))
	d, _ := a.create(src, "app:v1")
	ref := srv.Host + "/oci2/app:v1"
	push := a.pushJSON("app:v1", ref)
	if push["digest"] != d || num(push, "blobs_uploaded") == 0 || num(push, "bytes_sent") == 0 {
		t.Fatalf("push: %v", push)
	}

	b := regStore(t, filepath.Join(dir, "b"))
	pull := b.pullJSON(ref, "--tag", "copy:v1")
	if pull["digest"] != d {
		t.Fatalf("pulled %v, pushed %s", pull["digest"], d)
	}
	if num(pull, "bytes_received") < num(push, "bytes_sent")-int64(64<<10) {
		t.Errorf("pull received %d bytes, push sent %d", num(pull, "bytes_received"), num(push, "bytes_sent"))
	}
	b.must("check", "--read-data")
	dest := filepath.Join(dir, "dest")
	b.must("unpack", "copy:v1", dest)
	compareTrees(t, want, snapshot(t, dest), compareOptions{})

	// A second pull fetches nothing but the manifests.
	again := b.pullJSON(ref)
	if num(again, "frames_fetched") != 0 || num(again, "bytes_received") > 4096 {
		t.Errorf("second pull: %v", again)
	}
}

// TestRegistryIncremental: pushing v2 after v1 sends exactly the blobs v1
// lacks; pulling v2 into a store holding v1 fetches exactly the new frames,
// in few requests.
func TestRegistryIncremental(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{})
	dir := workDir(t)
	v1, v2 := filepath.Join(dir, "v1"), filepath.Join(dir, "v2")
	writeMediumTree(t, v1, 11, 240)
	copyTree(t, v1, v2)
	writeMediumTree(t, filepath.Join(v2, "zz-new"), 12, 20)
	if err := os.WriteFile(filepath.Join(v2, "d03", "changed"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	a := regStore(t, filepath.Join(dir, "a"))
	a.create(v1, "app:v1")
	a.create(v2, "app:v2")
	p1, p2 := partsOf(t, a.dir, "docker.io/library/app:v1"), partsOf(t, a.dir, "docker.io/library/app:v2")
	nNew, bytesNew, total := newBlobs(p1, p2)
	repo := srv.Host + "/oci2/app"
	a.pushJSON("app:v1", repo+":v1")
	push := a.pushJSON("app:v2", repo+":v2")
	t.Logf("push v2 after v1: %d of %d blobs new (%d of %d bytes): %v", nNew, len(p2.blobs), bytesNew, total, push)
	if num(push, "blobs_uploaded") != int64(nNew) || num(push, "bytes_uploaded") != bytesNew {
		t.Errorf("push v2 uploaded %d blobs (%d bytes), want %d (%d bytes)",
			num(push, "blobs_uploaded"), num(push, "bytes_uploaded"), nNew, bytesNew)
	}
	if sent := num(push, "bytes_sent"); sent > bytesNew+64<<10 || sent > total*3/4 {
		t.Errorf("push v2 sent %d bytes (%d new of %d)", sent, bytesNew, total)
	}
	if r := num(push, "requests"); r >= 100 {
		t.Errorf("push v2: %d requests", r)
	}

	b := regStore(t, filepath.Join(dir, "b"))
	b.pullJSON(repo + ":v1")
	pull := b.pullJSON(repo + ":v2")
	fNew, fBytes := newFrames(p1, p2)
	t.Logf("pull v2 into a store with v1: %d of %d frames new (%d bytes): %v", fNew, len(p2.frames), fBytes, pull)
	if num(pull, "frames_fetched")+num(pull, "frames_rebuilt") != int64(fNew) ||
		num(pull, "frames_present") != int64(len(p2.frames)-fNew) {
		t.Errorf("pull v2: want %d frames fetched or rebuilt, %d present", fNew, len(p2.frames)-fNew)
	}
	if recv := num(pull, "bytes_received"); recv < fBytes || recv > total/2 {
		t.Errorf("pull v2 received %d bytes for %d new of %d", recv, fBytes, total)
	}
	if r := num(pull, "requests"); r >= 100 {
		t.Errorf("pull v2: %d requests", r)
	}
	b.must("check", "--read-data")
}

// TestRegistryFaults: a registry that fails, then recovers, is retried; one
// that serves wrong bytes is named and leaves the store consistent.
func TestRegistryFaults(t *testing.T) {
	p := newProxied(t, 21, 80)
	dir, proxy, a := p.dir, p.proxy, p.a
	f := proxy.Add(registrytest.Fault{Method: "PUT", Path: "/blobs/uploads/", Count: 2, Kind: registrytest.Status, Status: 500})
	r := a.must("push", "app:v1", proxy.Host+"/oci2/app:v1")
	if proxy.Hits(f) != 2 {
		t.Errorf("500 fault hit %d times", proxy.Hits(f))
	}
	mentions(t, "push stderr", r.Stderr, "500 Internal Server Error", "retrying")

	proxy.Clear()
	f = proxy.Add(registrytest.Fault{Method: "GET", Path: "/blobs/", Count: 2, Kind: registrytest.Drop})
	b := regStore(t, filepath.Join(dir, "b"))
	r = b.must("pull", proxy.Host+"/oci2/app:v1")
	if proxy.Hits(f) != 2 {
		t.Errorf("drop fault hit %d times", proxy.Hits(f))
	}
	b.must("check", "--read-data")

	proxy.Clear()
	proxy.Add(registrytest.Fault{Method: "GET", Path: "/blobs/", Kind: registrytest.Corrupt})
	c := regStore(t, filepath.Join(dir, "c"))
	r = c.run("pull", proxy.Host+"/oci2/app:v1")
	if r.Err == nil {
		t.Fatal("pull of corrupt blobs succeeded")
	}
	mentions(t, "pull stderr", r.Stderr, "digest mismatch")
	t.Logf("corrupt: %s", r.Stderr)
	c.must("check")
	if out := c.must("images").Stdout; strings.Contains(out, "app") {
		t.Errorf("failed pull left a name:\n%s", out)
	}
}

// TestRegistryKilledPull: a pull killed halfway resumes without fetching
// again what it stored.
func TestRegistryKilledPull(t *testing.T) {
	p := newProxied(t, 31, 300)
	dir, proxy, a, ref := p.dir, p.proxy, p.a, p.ref
	a.must("push", "app:v1", ref)
	full := regStore(t, filepath.Join(dir, "full")).pullJSON(ref)
	if num(full, "pack_requests") < 3 {
		t.Fatalf("image too small for this test: %v", full)
	}

	// Let the config, the pack indexes and two packs through; the third
	// pack request hangs, and the pull is killed there. Blob GETs of a pull
	// into an empty store: blobs_fetched less the index and the manifest.
	b := regStore(t, filepath.Join(dir, "b"))
	proxy.Add(registrytest.Fault{Method: "GET", Path: "/blobs/", Count: int(num(full, "blobs_fetched")) - 2 + 2, Kind: registrytest.Pass})
	stall := proxy.Add(registrytest.Fault{Method: "GET", Path: "/blobs/", Kind: registrytest.Stall})
	cmd := exec.Command(bin(t, "oci2"), "--store", b.dir, "pull", "--jobs", "1", ref)
	cmd.Env = append(os.Environ(), b.env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for proxy.Hits(stall) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if proxy.Hits(stall) == 0 {
		t.Fatal("the pull never reached the stalled request")
	}
	proxy.Clear()
	b.must("check")
	res := b.pullJSON(ref)
	t.Logf("full pull: %v\nresumed pull: %v", full, res)
	if num(res, "frames_present") == 0 || num(res, "bytes_received") >= num(full, "bytes_received") {
		t.Errorf("resumed pull kept %d frames, received %d bytes (a full pull: %d)",
			num(res, "frames_present"), num(res, "bytes_received"), num(full, "bytes_received"))
	}
	b.must("check", "--read-data")
}

// TestRegistryAuthTLS: htpasswd auth over TLS with the test's CA, with
// credentials from a docker config file.
func TestRegistryAuthTLS(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{TLS: true, Users: map[string]string{"ci": "hunter2"}})
	dir := workDir(t)
	src := filepath.Join(dir, "src")
	writeSmallTree(t, src)
	a := regStore(t, filepath.Join(dir, "a"))
	d, _ := a.create(src, "app:v1")
	ref := srv.Host + "/secure/app:v1"

	// No credentials: refused, and named.
	r := a.run("push", "--ca-cert", srv.CAFile, "app:v1", ref)
	if r.Err == nil {
		t.Fatal("push without credentials succeeded")
	}
	mentions(t, "push without credentials", r.Stderr, "401 Unauthorized", "credentials")
	// No CA: the certificate is refused.
	a.env = dockerEnv(registrytest.DockerConfig(t, srv.Host, "ci", "hunter2"))
	r = a.run("push", "app:v1", ref)
	if r.Err == nil {
		t.Fatal("push without the CA succeeded")
	}
	mentions(t, "push without the CA", r.Stderr, "certificate")
	// Credentials and CA: pushed; pulled back with the CA from SSL_CERT_FILE.
	a.must("push", "--ca-cert", srv.CAFile, "app:v1", ref)
	b := regStore(t, filepath.Join(dir, "b"))
	b.env = append(dockerEnv(registrytest.DockerConfig(t, srv.Host, "ci", "hunter2")), "SSL_CERT_FILE="+srv.CAFile)
	if got := b.pullJSON(ref)["digest"]; got != d {
		t.Fatalf("pulled %v, pushed %s", got, d)
	}
	b.must("check", "--read-data")
}

// TestRegistrySkopeoCopy: skopeo copies an OCIv2 image between
// repositories keeping its digests (skopeo 1.9 does not look at layer media
// types), and the copy pulls and unpacks like the original.
func TestRegistrySkopeoCopy(t *testing.T) {
	requireTools(t, "skopeo")
	srv := registrytest.Start(t, registrytest.Options{})
	dir := workDir(t)
	src := filepath.Join(dir, "src")
	writeSmallTree(t, src)
	want := snapshot(t, src)
	a := regStore(t, filepath.Join(dir, "a"))
	d, _ := a.create(src, "app:v1")
	a.must("push", "app:v1", srv.Host+"/oci2/app:v1")
	r := run(t.Context(), nil, "skopeo", "copy", "--all", "--preserve-digests",
		"--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://"+srv.Host+"/oci2/app:v1", "docker://"+srv.Host+"/skopeo/copy:v1")
	if r.Err != nil {
		t.Fatalf("skopeo copy refused the image: %v\n%s", r.Err, r.Stderr)
	}
	b := regStore(t, filepath.Join(dir, "b"))
	if got := b.pullJSON(srv.Host + "/skopeo/copy:v1")["digest"]; got != d {
		t.Fatalf("copy pulled as %v, original %s", got, d)
	}
	dest := filepath.Join(dir, "dest")
	b.must("unpack", srv.Host+"/skopeo/copy:v1", dest)
	compareTrees(t, want, snapshot(t, dest), compareOptions{})
}

// TestRegistryCopy: oci2 copy within a registry mounts every blob; to
// another registry it streams them; digests are kept.
func TestRegistryCopy(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{})
	other := registrytest.Start(t, registrytest.Options{})
	dir := workDir(t)
	src := filepath.Join(dir, "src")
	writeMediumTree(t, src, 41, 40)
	a := regStore(t, filepath.Join(dir, "a"))
	d, _ := a.create(src, "app:v1")
	push := a.pushJSON("app:v1", srv.Host+"/oci2/app:v1")
	blobs := num(push, "blobs_uploaded")

	r := a.must("copy", "--json", srv.Host+"/oci2/app:v1", srv.Host+"/mirror/app")
	same := decodeJSON(t, r.Stdout)
	if num(same, "blobs_mounted") != blobs || num(same, "bytes_sent") > 64<<10 {
		t.Errorf("copy within the registry: %v (want %d blobs mounted)", same, blobs)
	}
	r = a.must("copy", "--json", srv.Host+"/mirror/app:v1", other.Host+"/far/app:v2")
	far := decodeJSON(t, r.Stdout)
	if num(far, "blobs_uploaded") != blobs || num(far, "bytes_sent") < num(push, "bytes_uploaded") {
		t.Errorf("copy to another registry: %v (want %d blobs uploaded)", far, blobs)
	}
	b := regStore(t, filepath.Join(dir, "b"))
	if got := b.pullJSON(other.Host + "/far/app:v2")["digest"]; got != d {
		t.Fatalf("copy pulled as %v, original %s", got, d)
	}
	b.must("check", "--read-data")
}
