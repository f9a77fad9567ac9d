package tests

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// bkDaemon is a buildkitd-oci2 started on a temporary root and socket.
type bkDaemon struct {
	dir   string // work directory of the test
	root  string // --root
	addr  string // unix://...
	store string // its oci2 store: <root>/oci2
	log   string
	flags []string // extra flags for start (--oci2-base-images=off)

	cmd    *exec.Cmd
	exited chan error
}

// startBuildkitd starts buildkitd-oci2 as root with the OCI worker only and
// stops it when t ends.
func startBuildkitd(t *testing.T, dir string) *bkDaemon {
	t.Helper()
	// an empty config: the machine's /etc/buildkit/buildkitd.toml must not apply
	d := newBkDaemon(t, dir, nil)
	d.start(t)
	return d
}

// newBkDaemon lays out a daemon in dir, with config as its buildkitd.toml,
// and stops it when t ends, logging the end of its log if t failed; it does
// not start it.
func newBkDaemon(t *testing.T, dir string, config []byte) *bkDaemon {
	t.Helper()
	d := &bkDaemon{
		dir:  dir,
		root: filepath.Join(dir, "bk-root"),
		addr: "unix://" + filepath.Join(dir, "buildkitd.sock"),
		log:  filepath.Join(dir, "buildkitd.log"),
	}
	d.store = filepath.Join(d.root, "oci2")
	if err := os.WriteFile(filepath.Join(dir, "buildkitd.toml"), config, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("buildkitd-oci2 log:\n%s", d.logTail())
		}
	})
	return d
}

// args are the daemon's flags: its root, socket and config, then workers.
func (d *bkDaemon) args(workers ...string) []string {
	a := []string{"--root", d.root, "--addr", d.addr, "--config", filepath.Join(d.dir, "buildkitd.toml")}
	return append(append(a, workers...), "--debug")
}

// start runs the daemon with the OCI worker only and waits until it answers.
func (d *bkDaemon) start(t *testing.T) {
	t.Helper()
	args := append([]string{"--oci-worker=true", "--containerd-worker=false"}, d.flags...)
	d.startCmd(t, exec.Command(bin(t, "buildkitd-oci2"), d.args(args...)...))
}

// startCmd runs cmd (buildkitd-oci2, or a command that execs it in the
// same process) and waits until the daemon answers.
func (d *bkDaemon) startCmd(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = cmd
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		d.cmd = nil
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	d.exited = exited
	go func(cmd *exec.Cmd) { exited <- cmd.Wait(); logf.Close() }(d.cmd)
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := run(t.Context(), nil, "buildctl", "--addr", d.addr, "debug", "workers")
		if r.Err == nil {
			return
		}
		select {
		case err := <-exited:
			d.cmd = nil // stop has nothing to wait for
			t.Fatalf("%s exited: %v\n%s", filepath.Base(cmd.Path), err, d.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("buildkitd-oci2 not ready after 60 s: %v\n%s", r.Err, d.logTail())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// stop ends the daemon gracefully (SIGTERM), killing it after 30 s.
func (d *bkDaemon) stop() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
}

func (d *bkDaemon) logTail() string {
	b, _ := os.ReadFile(d.log)
	return clip(string(b))
}

// bases are the OCI layouts of examples/bases/make-bases.sh.
type bases struct {
	dir     string
	digests map[string]string // name -> manifest digest of tag "latest"
}

// makeBases runs make-bases.sh with this build's oci2 binary.
func makeBases(t *testing.T, dir string) *bases {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		unavailable(t, "/bin/busybox missing (apt-get install -y busybox-static): the examples' busybox base")
	}
	out := filepath.Join(dir, "bases")
	env := []string{"OCI2=" + bin(t, "oci2"), "CORPUS=" + filepath.Join(dir, "no-corpus")}
	if p := corpusTree("debian-minbase"); p != "" {
		env = append(env, "MINBASE="+p)
	}
	if p := corpusTree("debian-build"); p != "" && os.Getenv("OCI2_TEST_LARGE") == "1" {
		env = append(env, "BASES_LARGE=1", "BUILDTREE="+p)
	}
	mustRun(t, env, "sh", "../examples/bases/make-bases.sh", out)
	b := &bases{dir: out, digests: map[string]string{}}
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		raw, err := os.ReadFile(filepath.Join(out, e.Name(), "index.json"))
		if err != nil {
			continue
		}
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil || len(idx.Manifests) == 0 {
			t.Fatalf("base %s: bad index.json: %v", e.Name(), err)
		}
		b.digests[e.Name()] = idx.Manifests[0].Digest.String()
	}
	return b
}

// buildctlArgs makes every base available as a named build context.
func (b *bases) buildctlArgs() []string {
	var args []string
	for name, dgst := range b.digests {
		args = append(args, "--oci-layout", name+"="+filepath.Join(b.dir, name),
			"--opt", "context:"+name+"=oci-layout://"+name+"@"+dgst)
	}
	return args
}

// buildctl builds the Dockerfile in ctxDir with output, and returns the
// decoded --metadata-file.
func (d *bkDaemon) buildctl(t *testing.T, b *bases, ctxDir, output string, extra ...string) (map[string]any, result) {
	t.Helper()
	md := filepath.Join(t.TempDir(), "metadata.json")
	args := []string{"--addr", d.addr, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
		"--local", "context=" + ctxDir, "--local", "dockerfile=" + ctxDir,
		"--output", output, "--metadata-file", md}
	if b != nil {
		args = append(args, b.buildctlArgs()...)
	}
	args = append(args, extra...)
	r := run(t.Context(), nil, "buildctl", args...)
	if r.Err != nil {
		return nil, r
	}
	m := map[string]any{}
	raw, err := os.ReadFile(md)
	if os.IsNotExist(err) {
		return m, r // type=local has no response
	}
	if err != nil {
		t.Fatalf("metadata file: %v", err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("metadata file: %v\n%s", err, raw)
	}
	return m, r
}

// mustBuildctl is buildctl that fails t on error.
func (d *bkDaemon) mustBuildctl(t *testing.T, b *bases, ctxDir, output string, extra ...string) map[string]any {
	t.Helper()
	m, r := d.buildctl(t, b, ctxDir, output, extra...)
	if r.Err != nil {
		t.Fatalf("buildctl build %s --output %s: %v\n%s", ctxDir, output, r.Err, clip(r.Stderr))
	}
	return m
}

// exportStats are the fields of the exporter's oci2.stats the tests read.
type exportStats struct {
	Platform string `json:"platform"`
	Manifest string `json:"manifest"`
	Stats    struct {
		Files        int64 `json:"files"`
		LogicalBytes int64 `json:"logical_bytes"`
		Frames       int64 `json:"frames"`
		FramesNew    int64 `json:"frames_new"`
		StoredBytes  int64 `json:"stored_bytes"`
		StoredNew    int64 `json:"stored_new_bytes"`
	} `json:"stats"`
	Cache struct {
		Files    int64 `json:"files"`
		Hits     int64 `json:"hits"`
		HitBytes int64 `json:"hit_bytes"`
	} `json:"cache"`
	Tree struct {
		Layers       int    `json:"layers"`
		LayersCached int    `json:"layers_cached"`
		Walked       int64  `json:"walked"`
		FullWalk     string `json:"full_walk"`
	} `json:"tree"`
	Seconds float64 `json:"seconds"`
}

// statsOf decodes oci2.stats from a metadata file: buildctl and buildx
// decode the base64 value into JSON themselves.
func statsOf(t *testing.T, m map[string]any) []exportStats {
	t.Helper()
	v, ok := m["oci2.stats"]
	if !ok {
		t.Fatalf("metadata has no oci2.stats: %v", m)
	}
	var raw []byte
	switch v := v.(type) {
	case string:
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			raw = b
		} else {
			raw = []byte(v)
		}
	default:
		raw, _ = json.Marshal(v)
	}
	var s []exportStats
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("oci2.stats: %v\n%s", err, raw)
	}
	return s
}

// digestOf returns containerimage.digest from a metadata file.
func digestOf(t *testing.T, m map[string]any) string {
	t.Helper()
	d, _ := m["containerimage.digest"].(string)
	if !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("metadata has no containerimage.digest: %v", m)
	}
	return d
}

// runImage unpacks name from the daemon's store as a bundle and runs it
// with runc, returning what it printed.
func (d *bkDaemon) runImage(t *testing.T, name string) string {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle")
	mustRun(t, nil, bin(t, "oci2"), "--store", d.store, "unpack", "--bundle", name, bundle)
	id := fmt.Sprintf("oci2-bk-%d-%d", os.Getpid(), time.Now().UnixNano())
	state := filepath.Join(d.dir, "runc-state")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	r := run(ctx, nil, "runc", "--root", state, "run", "--bundle", bundle, id)
	run(t.Context(), nil, "runc", "--root", state, "delete", "--force", id)
	if r.Err != nil {
		t.Fatalf("runc run %s: %v\nstdout:\n%s\nstderr:\n%s", name, r.Err, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// storeRefs reads the store's index.json: its refs, with annotations.
func (d *bkDaemon) storeRefs(t *testing.T) ocispec.Index {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(d.store, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var top ocispec.Index
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	return top
}

// storedIndex reads the image index a name points at straight from the
// store's OCI layout.
func (d *bkDaemon) storedIndex(t *testing.T, name string) ocispec.Index {
	t.Helper()
	for _, m := range d.storeRefs(t).Manifests {
		if m.Annotations[ocispec.AnnotationRefName] != name {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(d.store, "blobs", m.Digest.Algorithm().String(), m.Digest.Encoded()))
		if err != nil {
			t.Fatal(err)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			t.Fatal(err)
		}
		return idx
	}
	t.Fatalf("store has no ref %s", name)
	return ocispec.Index{}
}

// writeRandom writes n bytes of seeded random data (incompressible).
func writeRandom(t *testing.T, p string, n int, seed uint64) {
	t.Helper()
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	buf := make([]byte, n)
	rand.NewChaCha8(key).Read(buf)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Fatal(err)
	}
}
