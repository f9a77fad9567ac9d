package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/internal/testenv"
)

// TestGNUTarLayer imports a layer written by GNU tar: PAX sparse files,
// SCHILY xattrs, hardlinks, "./"-prefixed names.
func TestGNUTarLayer(t *testing.T) {
	testenv.RequireTools(t, "tar")
	src := t.TempDir()
	f, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("head"), 0)
	f.WriteAt([]byte("tail"), 8<<20)
	f.Close()
	os.WriteFile(filepath.Join(src, "x"), []byte("xattr"), 0o640)
	os.Link(filepath.Join(src, "x"), filepath.Join(src, "x2"))
	want := map[string]string{
		"sparse": `reg 0644 0:0 "head` + strings.Repeat(`\x00`, 8<<20-4) + `tail"`,
		"x":      `reg 0640 0:0 "xattr"`,
		"x2":     `reg 0640 0:0 "xattr" link=x`,
	}
	if err := unix.Setxattr(filepath.Join(src, "x"), "user.test", []byte("v"), 0); err == nil {
		want["x"] += ` user.test="v"`
		want["x2"] = `reg 0640 0:0 "xattr" link=x user.test="v"`
	}
	raw := filepath.Join(t.TempDir(), "layer.tar")
	run(t, "tar", "--format=pax", "--sparse", "--xattrs", "--xattrs-include=user.*", "--owner=0", "--group=0", "--numeric-owner",
		"-cf", raw, "-C", src, ".")
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 1<<20 {
		t.Fatalf("tar of %d bytes: the file was not stored sparse", len(b))
	}
	l := newTestLayout(t)
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digestT{digestOf(b)}}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: l.putJSON(ocispec.MediaTypeImageConfig, cfg),
		Layers: []ocispec.Descriptor{l.put(ocispec.MediaTypeImageLayer, b)}}
	m.SchemaVersion = 2
	l.tag("", l.putJSON(ocispec.MediaTypeImageManifest, m))
	s, err := load(t, "oci:"+l.dir, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := describeTree(t, s.root)
	for p, w := range want {
		if got[p] != w {
			g := got[p]
			if len(g) > 200 {
				g = g[:200] + "..."
			}
			t.Errorf("%s: got %s", p, g)
		}
	}
}
