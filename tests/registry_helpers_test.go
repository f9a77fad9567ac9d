package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store/local"
)

// pushJSON runs `oci2 push --json NAME REF` and decodes the result.
func (s *store) pushJSON(name, ref string, extra ...string) map[string]any {
	s.t.Helper()
	r := s.must(append([]string{"push", "--json", name, ref}, extra...)...)
	return decodeJSON(s.t, r.Stdout)
}

// pullJSON runs `oci2 pull --json REF` and decodes the result.
func (s *store) pullJSON(ref string, extra ...string) map[string]any {
	s.t.Helper()
	r := s.must(append([]string{"pull", "--json", ref}, extra...)...)
	return decodeJSON(s.t, r.Stdout)
}

// imageParts is what one stored image is made of.
type imageParts struct {
	blobs  map[digest.Digest]int64   // config, pack indexes, packs
	frames map[format.ChunkID]uint64 // frame -> stored size
}

// partsOf opens the single-platform image name of the store in dir.
func partsOf(t testing.TB, dir, name string) imageParts {
	t.Helper()
	ctx := context.Background()
	st, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := reader.Resolve(ctx, st, st, name, nil)
	if err != nil {
		t.Fatalf("resolving %s: %v", name, err)
	}
	img, err := reader.Open(ctx, st, m)
	if err != nil {
		t.Fatal(err)
	}
	p := imageParts{blobs: map[digest.Digest]int64{img.Manifest.Config.Digest: img.Manifest.Config.Size},
		frames: map[format.ChunkID]uint64{}}
	for _, l := range img.Manifest.Layers {
		p.blobs[l.Digest] = l.Size
	}
	for _, list := range [][]reader.Pack{img.TreePacks, img.DataPacks} {
		for _, pk := range list {
			for _, f := range pk.Index.Frames {
				p.frames[f.Digest] = f.StoredSize
			}
		}
	}
	return p
}

// newIn returns the blobs of b not in a: count and bytes, and b's total.
func newBlobs(a, b imageParts) (n int, bytes, total int64) {
	for d, size := range b.blobs {
		total += size
		if _, ok := a.blobs[d]; !ok {
			n++
			bytes += size
		}
	}
	return n, bytes, total
}

// newFrames returns the frames of b not in a: count and stored bytes.
func newFrames(a, b imageParts) (n int, bytes int64) {
	for f, size := range b.frames {
		if _, ok := a.frames[f]; !ok {
			n++
			bytes += int64(size)
		}
	}
	return n, bytes
}

// copyTree copies src to dst with cp -a (modes, times, links kept).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
}

// dockerEnv returns the environment pointing the docker config at dir.
func dockerEnv(dir string) []string { return []string{"DOCKER_CONFIG=" + dir} }

// emptyDockerConfig isolates a test from the user's credentials.
func emptyDockerConfig(t testing.TB) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// mentions fails t unless s contains every word.
func mentions(t testing.TB, what, s string, words ...string) {
	t.Helper()
	for _, w := range words {
		if !strings.Contains(s, w) {
			t.Errorf("%s does not mention %q:\n%s", what, w, clip(s))
		}
	}
}
