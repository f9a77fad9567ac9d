package convert

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/store/memstore"
)

// openNamed resolves the image name in st and opens it with a chunk reader.
func openNamed(t testing.TB, st *memstore.Store, name string) (*reader.Image, *reader.ChunkReader) {
	t.Helper()
	ctx := context.Background()
	desc, err := reader.Resolve(ctx, st, st, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err := reader.Open(ctx, st, desc)
	if err != nil {
		t.Fatal(err)
	}
	return img, reader.NewChunkReader(img, reader.LocalFrames(st))
}

// describeImage walks an OCIv2 image of st and renders it like describeTree.
func describeImage(t testing.TB, st *memstore.Store, name string) (map[string]string, *reader.Image) {
	t.Helper()
	img, cr := openNamed(t, st, name)
	out := map[string]string{}
	err := reader.Walk(context.Background(), cr, img.Root, reader.DefaultLimits, func(p string, e *format.Entry) error {
		if e.Type == format.TypeHardlink {
			out[p] = out[e.Target] + " link=" + e.Target
			return nil
		}
		var content []byte
		if e.Type == format.TypeReg {
			content = readertest.Content(t, cr, e)
		}
		out[p] = describeEntry(e, content, "")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, img
}

func importBase(t *testing.T) (*memstore.Store, *ImportResult) {
	t.Helper()
	l := newTestLayout(t)
	l.tag("v1", l.image(baseLayers(), nil))
	st := memstore.New()
	res, err := Import(context.Background(), st, "oci:"+l.dir+":v1", ImportOptions{Tags: []string{"example.com/base:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	return st, res
}

func TestImport(t *testing.T) {
	st, res := importBase(t)
	got, img := describeImage(t, st, "example.com/base:v1")
	diffMaps(t, got, wantBaseTree())
	if len(res.Tags) != 1 || res.Tags[0] != "example.com/base:v1" {
		t.Errorf("tags %v", res.Tags)
	}
	c := img.Config
	if strings.Join(c.Config.Entrypoint, " ") != "/bin/sh" || strings.Join(c.Config.Env, " ") != "PATH=/bin" {
		t.Errorf("config not carried over: %+v", c.Config)
	}
	if len(c.RootFS.DiffIDs) != 0 || len(c.History) != 3 {
		t.Errorf("rootfs %+v, history %+v", c.RootFS, c.History)
	}
	for _, h := range c.History {
		if !h.EmptyLayer {
			t.Errorf("history entry %+v: want empty_layer", h)
		}
	}
	if res.Manifest.Platform == nil || res.Manifest.Platform.Architecture != "amd64" {
		t.Errorf("manifest platform %+v", res.Manifest.Platform)
	}
}

// TestImportDefaultTag: without Tags the source reference names the image.
func TestImportDefaultTag(t *testing.T) {
	l := newTestLayout(t)
	l.tag("v1", l.image(baseLayers()[:1], nil))
	st := memstore.New()
	res, err := Import(context.Background(), st, "oci:"+l.dir+":v1", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.GetRef(context.Background(), "v1")
	if err != nil || got.Digest != res.Index.Digest {
		t.Fatalf("ref v1: %v, %v; want %s", got.Digest, err, res.Index.Digest)
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	ctx := context.Background()
	st, res := importBase(t)
	dir := t.TempDir()
	layers := map[string]string{}
	for _, c := range []struct{ comp, dst string }{
		{"gzip", "oci:" + dir + "/gz:v1"},
		{"zstd", "oci-archive:" + dir + "/img.tar:v1"},
		{"none", "oci:" + dir + "/gz:raw"}, // a second image in the same layout
	} {
		er, err := Export(ctx, st, "example.com/base:v1", c.dst, ExportOptions{Compression: Compression(c.comp)})
		if err != nil {
			t.Fatalf("export %s: %v", c.dst, err)
		}
		layers[c.comp] = string(er.Layer.Digest)
		if er.Layer.MediaType != Compression(c.comp).mediaType() {
			t.Errorf("%s: layer media type %s", c.comp, er.Layer.MediaType)
		}
		back := memstore.New()
		br, err := Import(ctx, back, c.dst, ImportOptions{Tags: []string{"back"}})
		if err != nil {
			t.Fatalf("import %s: %v", c.dst, err)
		}
		if br.Manifest.Digest != res.Manifest.Digest {
			got, _ := describeImage(t, back, "back")
			want, _ := describeImage(t, st, "example.com/base:v1")
			diffMaps(t, got, want)
			t.Errorf("%s: round trip manifest %s, want %s", c.comp, br.Manifest.Digest, res.Manifest.Digest)
		}
		// Export is deterministic: again gives the same layer.
		er2, err := Export(ctx, st, "example.com/base:v1", "oci:"+dir+"/again-"+c.comp, ExportOptions{Compression: Compression(c.comp)})
		if err != nil {
			t.Fatal(err)
		}
		if er2.Layer.Digest != er.Layer.Digest || er2.Manifest.Digest != er.Manifest.Digest {
			t.Errorf("%s: second export gave layer %s manifest %s, first %s %s", c.comp,
				er2.Layer.Digest, er2.Manifest.Digest, er.Layer.Digest, er.Manifest.Digest)
		}
	}
	// The tar itself is pinned: archive/tar's output for this tree (PAX
	// headers, "./" root, sorted, no atime/ctime/user names).
	if want := "sha256:33727c6b257b04dc64d4eb2385b2e5322d13b6d14d9ca54dcd2436657bed325e"; layers["none"] != want {
		t.Errorf("uncompressed layer %s, want the pinned %s", layers["none"], want)
	}
	// Both images live side by side in the gz layout.
	idx, err := readIndex(&dirLayout{dir: dir + "/gz"})
	if err != nil || len(idx.Manifests) != 2 || refNames(idx.Manifests) != `"v1", "raw"` {
		t.Errorf("gz layout index: %v %v", refNames(idx.Manifests), err)
	}
	// Exporting over the same tag replaces it.
	if _, err := Export(ctx, st, "example.com/base:v1", "oci:"+dir+"/gz:v1", ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	if idx, _ := readIndex(&dirLayout{dir: dir + "/gz"}); len(idx.Manifests) != 2 {
		t.Errorf("re-export added an index entry: %s", refNames(idx.Manifests))
	}
	// No temp files left behind.
	for _, p := range []string{dir + "/gz/blobs", dir} {
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("leftover %s", filepath.Join(p, e.Name()))
			}
		}
	}
	t.Logf("layers: %v", layers)
}

func TestExportConfig(t *testing.T) {
	ctx := context.Background()
	st, _ := importBase(t)
	dir := t.TempDir()
	er, err := Export(ctx, st, "example.com/base:v1", "oci:"+dir+":v1", ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := &dirLayout{dir: dir}
	mdesc, m, err := resolveManifest(l, er.Manifest, nil)
	if err != nil || mdesc.Digest != er.Manifest.Digest {
		t.Fatal(err)
	}
	cfg, _, err := readConfig(l, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != er.DiffID {
		t.Errorf("diff_ids %v, want [%s]", cfg.RootFS.DiffIDs, er.DiffID)
	}
	nonEmpty := 0
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if len(cfg.History) != 4 || nonEmpty != 1 || cfg.History[3].CreatedBy != exportCreatedBy {
		t.Errorf("history %+v: want 3 empty entries and the export's", cfg.History)
	}
	if strings.Contains(fmt.Sprint(m), "oci2") {
		t.Errorf("exported manifest mentions oci2: %+v", m)
	}
	if m.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Errorf("default compression: %s", m.Layers[0].MediaType)
	}
}

// walkImage calls fn for every entry of the image name in st.
func walkImage(t testing.TB, st *memstore.Store, name string, fn func(p string, e *format.Entry)) {
	t.Helper()
	img, cr := openNamed(t, st, name)
	err := reader.Walk(context.Background(), cr, img.Root, reader.DefaultLimits, func(p string, e *format.Entry) error {
		fn(p, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestExportHardlinkHeaders: a TypeLink header carries its target's mode,
// owner and mtime, because containerd and BuildKit apply them to the shared
// inode (mode 0 there made /usr/bin/perl unexecutable in exported bases).
func TestExportHardlinkHeaders(t *testing.T) {
	ctx := context.Background()
	st, _ := importBase(t)
	dir := t.TempDir()
	er, err := Export(ctx, st, "example.com/base:v1", "oci:"+dir+":v1", ExportOptions{Compression: CompressionNone})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "blobs", "sha256", er.Layer.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	regs := map[string]*tar.Header{}
	links := 0
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			regs[h.Name] = h
		case tar.TypeLink:
			links++
			target := regs[h.Linkname]
			if target == nil {
				t.Fatalf("link %s: target %s not before it", h.Name, h.Linkname)
			}
			if h.Mode != target.Mode || h.Uid != target.Uid || h.Gid != target.Gid || !h.ModTime.Equal(target.ModTime) {
				t.Errorf("link %s: mode %o %d:%d %v, target %s has %o %d:%d %v", h.Name, h.Mode, h.Uid, h.Gid, h.ModTime,
					h.Linkname, target.Mode, target.Uid, target.Gid, target.ModTime)
			}
		}
	}
	if links == 0 {
		t.Fatal("the base image has no hardlink: the test proves nothing")
	}
}
