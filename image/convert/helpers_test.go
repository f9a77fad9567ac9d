package convert

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
)

// ent is one tar entry of a test layer.
type ent struct {
	hdr  tar.Header
	body string
}

var t0 = time.Unix(1700000000, 0)

func dir(name string, mode int64) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: t0}}
}

func reg(name, body string, mode int64) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: t0}, body: body}
}

func symlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: t0}}
}

func hardlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: t0}}
}

// layer is a test layer: entries and a compression ("gzip", "zstd", "none").
type layer struct {
	ents []ent
	comp string
}

// tarBytes returns the uncompressed tar of es.
func tarBytes(t testing.TB, es []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := e.hdr
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %q: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compress(t testing.TB, raw []byte, comp string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	switch comp {
	case "gzip":
		zw := gzip.NewWriter(&buf)
		zw.Write(raw)
		zw.Close()
		return buf.Bytes(), ocispec.MediaTypeImageLayerGzip
	case "zstd":
		zw, _ := zstd.NewWriter(&buf)
		zw.Write(raw)
		zw.Close()
		return buf.Bytes(), ocispec.MediaTypeImageLayerZstd
	case "docker":
		zw := gzip.NewWriter(&buf)
		zw.Write(raw)
		zw.Close()
		return buf.Bytes(), "application/vnd.docker.image.rootfs.diff.tar.gzip"
	}
	return raw, ocispec.MediaTypeImageLayer
}

// testLayout is an OCI layout under construction.
type testLayout struct {
	t   testing.TB
	dir string
	idx ocispec.Index
}

func newTestLayout(t testing.TB) *testLayout {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	l := &testLayout{t: t, dir: dir}
	l.idx.SchemaVersion = 2
	l.idx.MediaType = ocispec.MediaTypeImageIndex
	return l
}

func (l *testLayout) put(mt string, b []byte) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := os.WriteFile(filepath.Join(l.dir, "blobs", "sha256", d.Digest.Encoded()), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
	return d
}

func (l *testLayout) putJSON(mt string, v any) ocispec.Descriptor {
	b, err := json.Marshal(v)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.put(mt, b)
}

// image stores layers, config and manifest; edit may change the config
// (after diff_ids are set) before it is stored.
func (l *testLayout) image(layers []layer, edit func(*ocispec.Image)) ocispec.Descriptor {
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config:   ocispec.ImageConfig{Entrypoint: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	m.SchemaVersion = 2
	for i, ly := range layers {
		raw := tarBytes(l.t, ly.ents)
		blob, mt := compress(l.t, raw, ly.comp)
		m.Layers = append(m.Layers, l.put(mt, blob))
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(raw))
		cfg.History = append(cfg.History, ocispec.History{CreatedBy: fmt.Sprintf("layer %d", i+1)})
	}
	if edit != nil {
		edit(&cfg)
	}
	m.Config = l.putJSON(ocispec.MediaTypeImageConfig, cfg)
	return l.putJSON(ocispec.MediaTypeImageManifest, m)
}

// tag adds desc to index.json under name ("" for none) and writes it.
func (l *testLayout) tag(name string, desc ocispec.Descriptor) {
	if name != "" {
		desc.Annotations = map[string]string{ocispec.AnnotationRefName: name}
	}
	l.idx.Manifests = append(l.idx.Manifests, desc)
	b, _ := json.Marshal(l.idx)
	if err := os.WriteFile(filepath.Join(l.dir, "index.json"), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// describeTree renders a writer tree as path -> description, with hardlink
// groups named by their first path in canonical order.
func describeTree(t testing.TB, root *writer.Node) map[string]string {
	t.Helper()
	out := map[string]string{}
	groups := map[uint64]string{}
	var walk func(p string, n *writer.Node)
	walk = func(p string, n *writer.Node) {
		e := n.Entry
		var content []byte
		var link string
		if e.Type == format.TypeReg {
			rc, err := n.Content.Open()
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			content, _ = io.ReadAll(rc)
			rc.Close()
			if uint64(len(content)) != e.Size {
				t.Errorf("%s: content %d bytes, size %d", p, len(content), e.Size)
			}
			if n.Inode != 0 {
				if first, ok := groups[n.Inode]; ok {
					link = first
				} else {
					groups[n.Inode] = p
				}
			}
		}
		s := describeEntry(&e, content, link)
		out[p] = s
		kids := append([]*writer.Node(nil), n.Children...)
		sort.Slice(kids, func(i, j int) bool { return kids[i].Name < kids[j].Name })
		for _, k := range kids {
			kp := k.Name
			if p != "" {
				kp = p + "/" + k.Name
			}
			walk(kp, k)
		}
	}
	walk("", root)
	return out
}

// describeEntry renders one entry for describeTree and describeImage: type,
// mode and owner, then a file's content and the first path of its hardlink
// group (link, when not empty), a symlink's target or a device's numbers,
// then the xattrs.
func describeEntry(e *format.Entry, content []byte, link string) string {
	s := fmt.Sprintf("%s %04o %d:%d", typeName(e.Type), e.Mode, e.UID, e.GID)
	switch e.Type {
	case format.TypeReg:
		s += fmt.Sprintf(" %q", content)
		if link != "" {
			s += " link=" + link
		}
	case format.TypeSymlink:
		s += " -> " + e.Target
	case format.TypeChar, format.TypeBlock:
		s += fmt.Sprintf(" %d,%d", e.DevMajor, e.DevMinor)
	}
	for _, x := range e.Xattrs {
		s += fmt.Sprintf(" %s=%q", x.Name, x.Value)
	}
	return s
}

func typeName(t format.EntryType) string {
	return map[format.EntryType]string{format.TypeDir: "dir", format.TypeReg: "reg", format.TypeSymlink: "symlink",
		format.TypeHardlink: "hardlink", format.TypeChar: "char", format.TypeBlock: "block", format.TypeFifo: "fifo"}[t]
}

func diffMaps(t testing.TB, got, want map[string]string) {
	t.Helper()
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var diffs []string
	for _, k := range keys {
		if got[k] != want[k] {
			diffs = append(diffs, fmt.Sprintf("%q:\n   got  %s\n   want %s", k, got[k], want[k]))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("tree differs:\n%s", strings.Join(diffs, "\n"))
	}
}

type digestT = digest.Digest

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }

func readManifestFile(t testing.TB, l *testLayout, d ocispec.Descriptor) ocispec.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.dir, "blobs", "sha256", d.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
