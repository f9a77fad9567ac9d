package tests

import (
	"crypto/md5"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store/registry/registrytest"
)

// TestBuildKitPush: `--output type=oci2,name=REGISTRY/REPO:TAG,push=true`
// stores the image in the daemon's store, then pushes it in the export's
// finalize step through BuildKit's resolver and the client's session: a
// fresh store pulls it and runc runs it; v2 after a one-file change uploads
// only the new blobs; credentials come from the client's docker config
// (htpasswd over TLS with the CA from buildkitd.toml, and bearer tokens).
func TestBuildKitPush(t *testing.T) {
	requireRoot(t)
	requireTools(t, "runc", "buildctl")
	plain := registrytest.Start(t, registrytest.Options{})
	secure := registrytest.Start(t, registrytest.Options{TLS: true, Users: map[string]string{"ci": "hunter2"}})
	// bearer tokens: a proxy in front of another plain registry
	tokens := registrytest.NewProxy(t, registrytest.Start(t, registrytest.Options{}).URL())
	tokens.RequireBearer("ci", "hunter2")
	dir := workDir(t)
	b := makeBases(t, dir)
	// The TLS registry is on loopback, which BuildKit talks plain HTTP to
	// unless told otherwise: http = false and its CA, as a user would.
	toml := fmt.Sprintf("[registry.%q]\n  http = false\n  ca = [%q]\n", secure.Host, secure.CAFile)
	d := startBuildkitdConfig(t, dir, toml)
	// No credentials unless a subtest sets them.
	setDockerConfig(t, emptyDockerConfig(t))

	t.Run("plain", func(t *testing.T) { testPushPlain(t, d, b, plain) })
	t.Run("incremental", func(t *testing.T) { testPushIncremental(t, d, b, plain) })
	t.Run("by-digest", func(t *testing.T) { testPushByDigest(t, d, b, plain) })
	t.Run("auth-tls", func(t *testing.T) { testPushAuthTLS(t, d, b, secure) })
	t.Run("bearer", func(t *testing.T) { testPushBearer(t, d, b, tokens) })
	t.Run("bad-attrs", func(t *testing.T) { testPushBadAttrs(t, d) })
}

// testPushPlain: the hello example pushed with registry.insecure=true to a
// plain HTTP registry; a fresh store pulls the same digest and runs it.
func testPushPlain(t *testing.T, d *bkDaemon, b *bases, srv *registrytest.Server) {
	name := srv.Host + "/oci2/hello:v1"
	m, r := d.buildctl(t, b, filepath.Join("..", "examples", "Dockerfiles", "hello"),
		"type=oci2,name="+name+",push=true,registry.insecure=true")
	if r.Err != nil {
		t.Fatalf("buildctl push: %v\n%s", r.Err, clip(r.Stderr))
	}
	dgst := digestOf(t, m)
	// progress shows the push, with bytes
	mentions(t, "buildctl progress", r.Stderr, "pushing "+name+": upload", "pushed "+name+"@"+dgst)
	if s := pushedLine(t, r.Stderr, name); s.Uploaded == 0 || s.Present != 0 {
		t.Errorf("first push: %+v, want blobs uploaded and none present", s)
	}

	s := regStore(t, filepath.Join(t.TempDir(), "fresh"))
	if got := s.pullJSON(name)["digest"]; got != dgst {
		t.Fatalf("pulled %v, built %s", got, dgst)
	}
	s.must("check", "--read-data")
	out := d.runStoreImage(t, s.dir, name)
	if !hasAll(out, "hello from an oci2 image", "built on ") {
		t.Errorf("pulled image printed %q", out)
	}
}

// testPushIncremental: v1 and v2 (one 1 MiB file of 48 changed) pushed to
// one repository; the registry receives exactly the blobs of v2 that v1
// lacks, plus v2's manifest and index: the packs around the changed file
// (packs are cut by content, SPEC.md §5.4, about 8 MiB each), not the rest.
func testPushIncremental(t *testing.T, d *bkDaemon, b *bases, srv *registrytest.Server) {
	ctx := t.TempDir()
	const napp, appSize = 48, 1 << 20
	appContext(t, ctx, "app", napp, appSize)
	push := func(tag string) (string, map[string]any, pushSummary) {
		name := srv.Host + "/oci2/app:" + tag
		// no registry.insecure: loopback registries are plain HTTP in
		// BuildKit's defaults, as for the image exporter
		m, r := d.buildctl(t, b, ctx, "type=oci2,name="+name+",push=true")
		if r.Err != nil {
			t.Fatalf("buildctl push %s: %v\n%s", tag, r.Err, clip(r.Stderr))
		}
		return name, m, pushedLine(t, r.Stderr, name)
	}
	name1, m1, s1 := push("v1")
	before := registryBlobs(t, srv.Dir)
	writeRandom(t, filepath.Join(ctx, "app", "f124"), appSize, 777)
	name2, m2, s2 := push("v2")
	after := registryBlobs(t, srv.Dir)

	p1, p2 := partsOf(t, d.store, name1), partsOf(t, d.store, name2)
	wantN, wantBytes, total := newBlobs(p1, p2)
	want := map[digest.Digest]bool{
		digest.Digest(digestOf(t, m2)):            true, // index
		digest.Digest(statsOf(t, m2)[0].Manifest): true,
	}
	for dg := range p2.blobs {
		if _, ok := p1.blobs[dg]; !ok {
			want[dg] = true
		}
	}
	var got []string
	var gotBytes int64
	for dg, size := range after {
		if _, ok := before[dg]; ok {
			continue
		}
		got = append(got, dg.String())
		gotBytes += size
		if !want[dg] {
			t.Errorf("v2 push stored %s (%d bytes), not a new blob of v2", dg, size)
		}
	}
	if len(got) != len(want) {
		t.Errorf("v2 push stored %d new blobs, want %d (%d of the image + manifest + index): %v", len(got), len(want), wantN, got)
	}
	if s2.Uploaded != wantN || s2.Uploaded+s2.Present != len(p2.blobs) {
		t.Errorf("v2 push summary %+v, want %d uploaded of %d", s2, wantN, len(p2.blobs))
	}
	t.Logf("v1 %s: %d blobs uploaded; v2 after a one-file change: %d of %d blobs uploaded, %d KiB stored of %d KiB (%.1f%%)",
		digestOf(t, m1), s1.Uploaded, s2.Uploaded, len(p2.blobs), gotBytes>>10, total>>10, 100*float64(wantBytes)/float64(total))
	if 3*wantBytes > total {
		t.Errorf("v2 uploaded %d bytes of %d: more than the packs around the changed file", wantBytes, total)
	}

	s := regStore(t, filepath.Join(t.TempDir(), "fresh"))
	s.pullJSON(name2)
	out := d.runStoreImage(t, s.dir, name2)
	raw, _ := os.ReadFile(filepath.Join(ctx, "app", "f124"))
	if sum := fmt.Sprintf("%x  f124", md5.Sum(raw)); !hasAll(out, "app\n", sum) {
		t.Errorf("v2 printed %q, want the new f124 (%s)", clip(out), sum)
	}
}

// testPushByDigest: push-by-digest=true stores the image untagged; it is
// pulled by digest.
func testPushByDigest(t *testing.T, d *bkDaemon, b *bases, srv *registrytest.Server) {
	ctx := t.TempDir()
	appContext(t, ctx, "by digest", 2, 4096)
	name := srv.Host + "/oci2/bydigest:v1"
	m, r := d.buildctl(t, b, ctx, "type=oci2,name="+name+",push=true,push-by-digest=true,registry.insecure=true")
	if r.Err != nil {
		t.Fatalf("buildctl push-by-digest: %v\n%s", r.Err, clip(r.Stderr))
	}
	dgst := digestOf(t, m)
	s := regStore(t, filepath.Join(t.TempDir(), "fresh"))
	if res := s.run("pull", name); res.Err == nil {
		t.Errorf("tag v1 exists after push-by-digest")
	}
	ref := srv.Host + "/oci2/bydigest@" + dgst
	if got := s.pullJSON(ref, "--tag", "bydigest")["digest"]; got != dgst {
		t.Errorf("pulled %v, built %s", got, dgst)
	}
}

// testPushAuthTLS: htpasswd over TLS; the daemon trusts the CA through
// buildkitd.toml and takes the credentials from the client's docker config
// through the session: none is refused and named, the right ones push.
func testPushAuthTLS(t *testing.T, d *bkDaemon, b *bases, srv *registrytest.Server) {
	ctx := t.TempDir()
	appContext(t, ctx, "secure", 3, 64<<10)
	name := srv.Host + "/secure/app:v1"
	out := "type=oci2,name=" + name + ",push=true"

	_, r := d.buildctl(t, b, ctx, out)
	if r.Err == nil {
		t.Fatal("push without credentials succeeded")
	}
	mentions(t, "push without credentials", r.Stderr, "pushing "+name, "401 Unauthorized")
	t.Logf("without credentials: %s", lastLine(r.Stderr))

	setDockerConfig(t, registrytest.DockerConfig(t, srv.Host, "ci", "wrong"))
	if _, r = d.buildctl(t, b, ctx, out); r.Err == nil {
		t.Fatal("push with a wrong password succeeded")
	}
	mentions(t, "push with a wrong password", r.Stderr, "401 Unauthorized")

	setDockerConfig(t, registrytest.DockerConfig(t, srv.Host, "ci", "hunter2"))
	m, r := d.buildctl(t, b, ctx, out)
	if r.Err != nil {
		t.Fatalf("push with credentials: %v\n%s", r.Err, clip(r.Stderr))
	}
	dgst := digestOf(t, m)
	pushedLine(t, r.Stderr, name)
	s := regStore(t, filepath.Join(t.TempDir(), "fresh"))
	s.env = append(dockerEnv(registrytest.DockerConfig(t, srv.Host, "ci", "hunter2")), "SSL_CERT_FILE="+srv.CAFile)
	if got := s.pullJSON(name)["digest"]; got != dgst {
		t.Errorf("pulled %v, built %s", got, dgst)
	}
}

// testPushBearer: token auth (the registry's challenge names the realm;
// the session's credentials buy a token with push scope).
func testPushBearer(t *testing.T, d *bkDaemon, b *bases, p *registrytest.Proxy) {
	ctx := t.TempDir()
	appContext(t, ctx, "bearer", 3, 64<<10)
	name := p.Host + "/tokens/app:v1"
	setDockerConfig(t, registrytest.DockerConfig(t, p.Host, "ci", "hunter2"))
	m, r := d.buildctl(t, b, ctx, "type=oci2,name="+name+",push=true")
	if r.Err != nil {
		t.Fatalf("push with a bearer token: %v\n%s\nproxy saw %q, token scopes %q", r.Err, clip(r.Stderr), p.Requests(), p.TokenScopes())
	}
	if !slices.Contains(p.TokenScopes(), "repository:tokens/app:pull,push") {
		t.Errorf("token scopes %q, want repository:tokens/app:pull,push", p.TokenScopes())
	}
	if s := pushedLine(t, r.Stderr, name); s.Digest != digestOf(t, m) {
		t.Errorf("pushed %s, built %s", s.Digest, digestOf(t, m))
	}
}

// testPushBadAttrs: push attributes that cannot work fail before the build.
func testPushBadAttrs(t *testing.T, d *bkDaemon) {
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	for _, tc := range []struct{ output, want string }{
		{"type=oci2,push=true", "push=true needs name="},
		{"type=oci2,name=x,push-by-digest=true", "push-by-digest=true needs push=true"},
		{"type=oci2,name=x,push=yes-please", `push="yes-please": not a bool`},
	} {
		_, r := d.buildctl(t, nil, ctx, tc.output)
		if r.Err == nil || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("--output %s: err %v, want an error containing %q:\n%s", tc.output, r.Err, tc.want, clip(r.Stderr))
		}
	}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
