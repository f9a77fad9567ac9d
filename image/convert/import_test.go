package convert

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store/memstore"
)

// TestImportPlatform: a multi-platform index yields the requested image.
func TestImportPlatform(t *testing.T) {
	l := newTestLayout(t)
	var ms []ocispec.Descriptor
	for _, arch := range []string{"amd64", "arm64"} {
		d := l.image([]layer{{comp: "gzip", ents: []ent{reg("arch", arch, 0o644)}}}, func(c *ocispec.Image) {
			c.Architecture = arch
		})
		d.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		ms = append(ms, d)
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: ms}
	idx.SchemaVersion = 2
	l.tag("multi", l.putJSON(ocispec.MediaTypeImageIndex, idx))
	l.tag("amd", ms[0])

	for _, arch := range []string{"arm64", "amd64"} {
		s, err := load(t, "oci:"+l.dir+":multi", ImportOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: arch}})
		if err != nil {
			t.Fatal(err)
		}
		if got := describeTree(t, s.root)["arch"]; got != `reg 0644 0:0 "`+arch+`"` {
			t.Errorf("%s: got %s", arch, got)
		}
		if s.config.Architecture != arch {
			t.Errorf("config arch %s", s.config.Architecture)
		}
	}
	_, err := load(t, "oci:"+l.dir+":multi", ImportOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "ppc64le"}})
	if err == nil || !strings.Contains(err.Error(), "no image for platform linux/ppc64le (have linux/amd64, linux/arm64)") {
		t.Errorf("got %v", err)
	}
	// A manifest whose config disagrees with the requested platform.
	_, err = load(t, "oci:"+l.dir+":amd", ImportOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}})
	if err == nil || !strings.Contains(err.Error(), "image is for linux/amd64, not linux/arm64") {
		t.Errorf("got %v", err)
	}
}

// TestImportDockerTypes: Docker schema 2 media types, and a "gzip" layer
// that is really an uncompressed tar.
func TestImportDockerTypes(t *testing.T) {
	l := newTestLayout(t)
	raw := tarBytes(t, []ent{reg("a", "plain", 0o644)})
	gz, _ := compress(t, tarBytes(t, []ent{reg("b", "gz", 0o644)}), "docker")
	l1 := l.put("application/vnd.docker.image.rootfs.diff.tar.gzip", raw)
	l2 := l.put("application/vnd.docker.image.rootfs.diff.tar.gzip", gz)
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digestT{digestOf(raw), digestOf(tarBytes(t, []ent{reg("b", "gz", 0o644)}))}}
	m := ocispec.Manifest{MediaType: format.MediaTypeDockerManifest, Config: l.putJSON(format.MediaTypeDockerConfig, cfg), Layers: []ocispec.Descriptor{l1, l2}}
	m.SchemaVersion = 2
	md := l.putJSON(format.MediaTypeDockerManifest, m)
	list := ocispec.Index{MediaType: format.MediaTypeDockerList, Manifests: []ocispec.Descriptor{md}}
	list.SchemaVersion = 2
	l.tag("", l.putJSON(format.MediaTypeDockerList, list))
	s, err := load(t, "oci:"+l.dir, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := describeTree(t, s.root)
	if got["a"] != `reg 0644 0:0 "plain"` || got["b"] != `reg 0644 0:0 "gz"` {
		t.Errorf("got %v", got)
	}
}

// TestImportSparse: big zero runs stay holes in the spool and come out as
// zero extents.
func TestImportSparse(t *testing.T) {
	body := "head" + strings.Repeat("\x00", 1<<20) + "tail"
	l := newTestLayout(t)
	l.tag("", l.image([]layer{{comp: "zstd", ents: []ent{reg("sparse", body, 0o644)}}}, nil))
	s, err := load(t, "oci:"+l.dir, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := string(s.root.Children[0].Content.(spoolContent))
	b, err := os.ReadFile(p)
	if err != nil || string(b) != body {
		t.Fatalf("spooled content differs (%d bytes, %v)", len(b), err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 >= 1<<20 {
		t.Errorf("spool file uses %d bytes: zero blocks were written, not skipped", st.Blocks*512)
	}

	ms := memstore.New()
	if _, err := Import(context.Background(), ms, "oci:"+l.dir, ImportOptions{Tags: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	var exts []format.Extent
	walkImage(t, ms, "s", func(p string, e *format.Entry) {
		if p == "sparse" {
			exts = append(exts, e.Extents...)
		}
	})
	var zero uint64
	for _, x := range exts {
		if x.Zero {
			zero += x.Length
		}
	}
	if zero < 1<<20-8192 {
		t.Errorf("extents %+v: want a zero extent over the hole", exts)
	}
}

// TestImportWarnings: a hardlink to a symlink becomes a copy, aufs metadata
// is skipped, both reported through Warn.
func TestImportWarnings(t *testing.T) {
	l := newTestLayout(t)
	l.tag("", l.image([]layer{{comp: "gzip", ents: []ent{
		symlink("s", "target"), hardlink("h", "s"), reg(".wh..wh.plnk", "", 0),
		{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "f", Mode: 0o600}}, hardlink("g", "f"),
	}}}, nil))
	var warns []string
	s, err := load(t, "oci:"+l.dir, ImportOptions{Warn: func(p string, err error) { warns = append(warns, p+": "+err.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	got := describeTree(t, s.root)
	if got["h"] != "symlink 0777 0:0 -> target" || got["g"] != "fifo 0600 0:0" {
		t.Errorf("got %v", got)
	}
	want := []string{
		`h: hardlink to non-regular file "s" stored as a copy`,
		".wh..wh.plnk: aufs metadata entry skipped",
		`g: hardlink to non-regular file "f" stored as a copy`,
	}
	if strings.Join(warns, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(want, "\n"))
	}
}

// TestImportProgress: layer progress ends at each layer's size, then the
// writer reports.
func TestImportProgress(t *testing.T) {
	l := newTestLayout(t)
	md := l.image(baseLayers(), nil)
	l.tag("", md)
	m := readManifestFile(t, l, md)
	last := map[int]int64{}
	phases := map[string]bool{}
	_, err := Import(context.Background(), memstore.New(), "oci:"+l.dir, ImportOptions{Tags: []string{"x"}, Progress: func(p ImportProgress) {
		phases[p.Phase] = true
		if p.Phase == "layer" {
			if p.Layers != 3 || p.LayerSize != m.Layers[p.Layer-1].Size {
				t.Errorf("progress %+v", p)
			}
			last[p.Layer] = p.LayerBytes
		} else if p.Write == nil {
			t.Errorf("writer progress without Write: %+v", p)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range m.Layers {
		if last[i+1] != d.Size {
			t.Errorf("layer %d: last progress %d, size %d", i+1, last[i+1], d.Size)
		}
	}
	if !phases["layer"] || len(phases) < 2 {
		t.Errorf("phases %v", phases)
	}
}

// TestArchiveHostileNames: names in an oci-archive never reach the
// filesystem; entries outside the layout are ignored.
func TestArchiveHostileNames(t *testing.T) {
	l := newTestLayout(t)
	l.tag("v1", l.image(baseLayers()[:1], nil))
	var es []ent
	filepath.Walk(l.dir, func(p string, fi os.FileInfo, err error) error {
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(l.dir, p)
			es = append(es, reg(rel, string(b), 0o644))
		}
		return nil
	})
	work := t.TempDir()
	es = append(es, reg("../../evil", "x", 0o644), reg("/abs-evil", "x", 0o644),
		reg("blobs/sha256/../../../evil2", "x", 0o644), symlink("blobs/sha512", "/etc"))
	arc := filepath.Join(work, "sub", "a.tar")
	os.MkdirAll(filepath.Dir(arc), 0o755)
	os.WriteFile(arc, tarBytes(t, es), 0o644)
	if _, err := load(t, "oci-archive:"+arc+":v1", ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(work)
	if len(ents) != 1 {
		t.Errorf("files appeared next to the archive: %v", ents)
	}
	// A gzipped archive is named as such.
	gz, _ := compress(t, tarBytes(t, es), "gzip")
	os.WriteFile(arc, gz, 0o644)
	if _, err := load(t, "oci-archive:"+arc+":v1", ImportOptions{}); err == nil || !strings.Contains(err.Error(), "gzip-compressed") {
		t.Errorf("got %v", err)
	}
}

// TestImportRejectsBadConfig: a source config runc would refuse later (NUL
// bytes, a relative WorkingDir) is refused when read, naming the field,
// before a layer is spooled.
func TestImportRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		edit func(c *ocispec.ImageConfig)
		want string
	}{
		{func(c *ocispec.ImageConfig) { c.Env = append(c.Env, "X=\x00") }, `config Env[1] "X=\x00" contains a NUL byte`},
		{func(c *ocispec.ImageConfig) { c.Cmd = []string{"a\x00b"} }, `config Cmd[0] "a\x00b" contains a NUL byte`},
		{func(c *ocispec.ImageConfig) { c.WorkingDir = "app" }, `config WorkingDir "app" is not an absolute path`},
	} {
		l := newTestLayout(t)
		l.tag("", l.image([]layer{{ents: []ent{reg("f", "x", 0o644)}, comp: "gzip"}},
			func(c *ocispec.Image) { tc.edit(&c.Config) }))
		spool := t.TempDir()
		_, err := load(t, "oci:"+l.dir, ImportOptions{TempDir: spool})
		if !errors.Is(err, format.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("import: %v, want %q", err, tc.want)
		}
		if left, _ := os.ReadDir(spool); len(left) != 0 {
			t.Errorf("spooled %d files for a refused config", len(left))
		}
	}
}
