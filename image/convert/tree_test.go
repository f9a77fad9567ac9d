package convert

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store"
)

// baseLayers is a three-layer image exercising every layer feature.
func baseLayers() []layer {
	xa := reg("data/xattr", "x", 0o600)
	xa.hdr.ModTime = time.Unix(1700000000, 123456789)
	xa.hdr.PAXRecords = map[string]string{
		"SCHILY.xattr.user.foo":            "bar",
		"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
	}
	xa.hdr.Uid, xa.hdr.Gid = 1000, 100
	dev := ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: t0}}
	fifo := ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o644, ModTime: t0}}
	return []layer{
		{comp: "none", ents: []ent{
			dir("./", 0o755),
			dir("etc/", 0o755),
			reg("etc/passwd", "root:x:0:0", 0o644),
			reg("etc/hosts", "old hosts", 0o644),
			dir("bin/", 0o755),
			reg("bin/sh", "ELF sh", 0o755),
			dir("opq/", 0o750),
			reg("opq/old1", "old1", 0o644),
			dir("opq/sub/", 0o755),
			reg("opq/sub/old2", "old2", 0o644),
			dir("del/", 0o755),
			reg("del/x", "x", 0o644),
			reg("usr/bin/su", "su", 0o4755),
			dev, fifo, xa,
			symlink("lnk", "etc"),
			reg("hl/a", "shared", 0o644),
			hardlink("hl/b", "hl/a"),
		}},
		{comp: "gzip", ents: []ent{
			reg("etc/hosts", "new hosts", 0o644),
			reg("etc/.wh.passwd", "", 0),
			reg(".wh.del", "", 0),
			reg("opq/new", "new", 0o644),
			reg("opq/sub/keep", "keep", 0o644),
			reg("opq/.wh..wh..opq", "", 0),
			reg("hl/a", "changed", 0o644),
			hardlink("hl/c", "hl/b"),
			hardlink("bin/sh2", "bin/sh"),
			reg("etc/.wh.nonexistent", "", 0),
		}},
		{comp: "zstd", ents: []ent{
			symlink("lnk2", "/etc/hosts"),
			reg("/etc/passwd", "root:x:0:0:new", 0o600),
		}},
	}
}

func wantBaseTree() map[string]string {
	return map[string]string{
		"":             "dir 0755 0:0",
		"bin":          "dir 0755 0:0",
		"bin/sh":       `reg 0755 0:0 "ELF sh"`,
		"bin/sh2":      `reg 0755 0:0 "ELF sh" link=bin/sh`,
		"data":         "dir 0755 0:0",
		"data/xattr":   `reg 0600 1000:100 "x" security.capability="\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" user.foo="bar"`,
		"dev":          "dir 0755 0:0",
		"dev/null":     "char 0666 0:0 1,3",
		"etc":          "dir 0755 0:0",
		"etc/hosts":    `reg 0644 0:0 "new hosts"`,
		"etc/passwd":   `reg 0600 0:0 "root:x:0:0:new"`,
		"hl":           "dir 0755 0:0",
		"hl/a":         `reg 0644 0:0 "changed"`,
		"hl/b":         `reg 0644 0:0 "shared"`,
		"hl/c":         `reg 0644 0:0 "shared" link=hl/b`,
		"lnk":          "symlink 0777 0:0 -> etc",
		"lnk2":         "symlink 0777 0:0 -> /etc/hosts",
		"opq":          "dir 0750 0:0",
		"opq/new":      `reg 0644 0:0 "new"`,
		"opq/sub":      "dir 0755 0:0",
		"opq/sub/keep": `reg 0644 0:0 "keep"`,
		"run":          "dir 0755 0:0",
		"run/fifo":     "fifo 0644 0:0",
		"usr":          "dir 0755 0:0",
		"usr/bin":      "dir 0755 0:0",
		"usr/bin/su":   `reg 4755 0:0 "su"`,
	}
}

func load(t *testing.T, src string, opts ImportOptions) (*source, error) {
	t.Helper()
	loc, err := ParseLocation(src)
	if err != nil {
		t.Fatal(err)
	}
	s, err := loadSource(context.Background(), loc, opts)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func TestLayersApply(t *testing.T) {
	l := newTestLayout(t)
	l.tag("v1", l.image(baseLayers(), nil))
	spool := t.TempDir()
	s, err := load(t, "oci:"+l.dir+":v1", ImportOptions{TempDir: spool})
	if err != nil {
		t.Fatal(err)
	}
	diffMaps(t, describeTree(t, s.root), wantBaseTree())
	// Metadata details the description leaves out.
	for _, k := range s.root.Children {
		if k.Name == "data" {
			x := k.Children[0]
			if x.MtimeSec != 1700000000 || x.MtimeNsec != 123456789 {
				t.Errorf("data/xattr mtime %d.%09d, want 1700000000.123456789", x.MtimeSec, x.MtimeNsec)
			}
		}
	}
	if s.root.MtimeSec != t0.Unix() {
		t.Errorf("root mtime %d, want %d (from the ./ entry)", s.root.MtimeSec, t0.Unix())
	}
	// Overwritten and deleted contents are gone from the spool already.
	files, _ := os.ReadDir(s.spool.dir)
	if len(files) != 9 {
		t.Errorf("spool holds %d files, want the 9 that are still named", len(files))
	}
	s.Close()
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("spool not removed: %v", left)
	}
}

func TestLayersApplyArchive(t *testing.T) {
	l := newTestLayout(t)
	l.tag("docker.io/library/base:v1", l.image(baseLayers(), nil))
	arc := t.TempDir() + "/img.tar"
	if err := archiveDir(l.dir, arc); err != nil {
		t.Fatal(err)
	}
	// A bare tag finds the full name.
	s, err := load(t, "oci-archive:"+arc+":v1", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	diffMaps(t, describeTree(t, s.root), wantBaseTree())
}

// hostile returns an image of a base layer plus one layer of es.
func hostile(t *testing.T, es ...ent) *testLayout {
	l := newTestLayout(t)
	base := []ent{dir("etc/", 0o755), reg("etc/passwd", "root", 0o644), symlink("lnk", "/etc"), dir("d/", 0o755)}
	l.tag("", l.image([]layer{{ents: base, comp: "gzip"}, {ents: es, comp: "gzip"}}, nil))
	return l
}

func TestHostileLayers(t *testing.T) {
	cases := []struct {
		name string
		ents []ent
		want string
	}{
		{"dotdot", []ent{reg("../../etc/x", "pwned", 0o644)}, `entry "../../etc/x": path escapes the image root`},
		{"absolute dotdot", []ent{reg("/../etc/x", "pwned", 0o644)}, "path escapes the image root"},
		{"inner dotdot", []ent{reg("d/../../x", "pwned", 0o644)}, "path escapes the image root"},
		{"symlink parent", []ent{reg("lnk/passwd", "pwned", 0o644)}, `entry "lnk/passwd": parent "lnk" is a symlink`},
		{"symlink planted same layer", []ent{symlink("a", "/etc"), reg("a/shadow", "pwned", 0o644)}, `parent "a" is a symlink`},
		{"file parent", []ent{reg("etc/passwd/x", "pwned", 0o644)}, `parent "etc/passwd" is not a directory`},
		{"whiteout dotdot", []ent{reg("d/.wh...", "", 0)}, `invalid whiteout name ".wh..."`},
		{"whiteout dot", []ent{reg("d/.wh..", "", 0)}, `invalid whiteout name ".wh.."`},
		{"whiteout escape", []ent{reg("d/../../.wh.etc", "", 0)}, "path escapes the image root"},
		{"whiteout under symlink", []ent{reg("lnk/.wh.passwd", "", 0)}, `whiteout: parent "lnk" is a symlink`},
		{"opaque under symlink", []ent{reg("lnk/.wh..wh..opq", "", 0)}, `opaque whiteout: parent "lnk" is a symlink`},
		{"hardlink outside", []ent{hardlink("d/x", "../outside")}, `hardlink target "../outside": path escapes the image root`},
		{"hardlink missing", []ent{hardlink("d/x", "etc/shadow")}, `hardlink target "etc/shadow" does not exist`},
		{"hardlink through symlink", []ent{hardlink("d/x", "lnk/passwd")}, `hardlink target "lnk/passwd": parent "lnk" is a symlink`},
		{"hardlink to dir", []ent{hardlink("d/x", "etc")}, `hardlink target "etc" is a directory`},
		{"overlay xattr", []ent{{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "d/o/", Mode: 0o755,
			PAXRecords: map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}}}}, `xattr "trusted.overlay.opaque" refused`},
		{"user overlay xattr", []ent{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "d/f", Mode: 0o644,
			PAXRecords: map[string]string{"SCHILY.xattr.user.overlay.redirect": "/etc"}}}}, `xattr "user.overlay.redirect" refused`},
		{"whiteout dir name", []ent{reg("d/.wh.x/y", "", 0o644)}, `directory ".wh.x" has the whiteout prefix`},
		{"uid (uid_t)-1", []ent{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "d/su", Mode: 0o4755, Uid: format.NoOwner}}},
			`entry "d/su": uid/gid 4294967295/0 out of range`},
		{"gid (gid_t)-1", []ent{{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "d/sg/", Mode: 0o2755, Gid: format.NoOwner}}},
			`uid/gid 0/4294967295 out of range`},
		{"uid 2^32", []ent{{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "d/p", Mode: 0o644, Uid: 1 << 32}}},
			`uid/gid 4294967296/0 out of range`},
		{"root not dir", []ent{reg(".", "", 0o644)}, "the image root must be a directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := hostile(t, c.ents...)
			spool := t.TempDir()
			_, err := load(t, "oci:"+l.dir, ImportOptions{TempDir: spool})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want %q", err, c.want)
			}
			if !strings.Contains(err.Error(), "layer 2 (sha256:") {
				t.Errorf("error %q does not name the layer", err)
			}
			if left, _ := os.ReadDir(spool); len(left) != 0 {
				t.Errorf("spool not removed: %v", left)
			}
		})
	}
}

func TestAbsoluteNamesNormalized(t *testing.T) {
	l := hostile(t, reg("/etc/x", "abs", 0o644), reg("//d/./y", "y", 0o644), reg("d/z/../w", "w", 0o644))
	s, err := load(t, "oci:"+l.dir, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := describeTree(t, s.root)
	for p, want := range map[string]string{"etc/x": `reg 0644 0:0 "abs"`, "d/y": `reg 0644 0:0 "y"`, "d/w": `reg 0644 0:0 "w"`} {
		if got[p] != want {
			t.Errorf("%s: got %q, want %q", p, got[p], want)
		}
	}
}

func TestBadLayerBlobs(t *testing.T) {
	ents := []ent{reg("f", strings.Repeat("hello ", 1000), 0o644)}
	t.Run("wrong diff_id", func(t *testing.T) {
		l := newTestLayout(t)
		l.tag("", l.image([]layer{{ents: ents, comp: "gzip"}, {ents: ents, comp: "zstd"}}, func(c *ocispec.Image) {
			c.RootFS.DiffIDs[1] = c.RootFS.DiffIDs[0][:len(c.RootFS.DiffIDs[0])-4] + "beef"
		}))
		_, err := load(t, "oci:"+l.dir, ImportOptions{})
		if !errors.Is(err, ErrDiffIDMismatch) || !strings.Contains(err.Error(), "layer 2 (sha256:") {
			t.Fatalf("got %v, want a diff_id mismatch naming layer 2", err)
		}
	})
	t.Run("diff_id count", func(t *testing.T) {
		l := newTestLayout(t)
		l.tag("", l.image([]layer{{ents: ents, comp: "gzip"}}, func(c *ocispec.Image) {
			c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, c.RootFS.DiffIDs[0])
		}))
		_, err := load(t, "oci:"+l.dir, ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), "manifest has 1 layers but config has 2 diff_ids") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("truncated gzip", func(t *testing.T) {
		l := newTestLayout(t)
		raw := tarBytes(t, ents)
		gz, _ := compress(t, raw, "gzip")
		// A consistent descriptor for a cut stream: the blob is intact, its
		// content is broken.
		desc := l.put(ocispec.MediaTypeImageLayerGzip, gz[:len(gz)/2])
		cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}
		cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digestT{digestOf(raw)}}
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: l.putJSON(ocispec.MediaTypeImageConfig, cfg), Layers: []ocispec.Descriptor{desc}}
		m.SchemaVersion = 2
		l.tag("", l.putJSON(ocispec.MediaTypeImageManifest, m))
		_, err := load(t, "oci:"+l.dir, ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), "layer 1 (sha256:") || !strings.Contains(err.Error(), "unexpected EOF") {
			t.Fatalf("got %v, want unexpected EOF in layer 1", err)
		}
	})
	t.Run("layer digest mismatch", func(t *testing.T) {
		l := newTestLayout(t)
		md := l.image([]layer{{ents: ents, comp: "none"}}, nil)
		l.tag("", md)
		m := readManifestFile(t, l, md)
		p := l.dir + "/blobs/sha256/" + m.Layers[0].Digest.Encoded()
		b, _ := os.ReadFile(p)
		b[600] ^= 1 // inside the file body: the tar still parses
		os.WriteFile(p, b, 0o644)
		_, err := load(t, "oci:"+l.dir, ImportOptions{})
		if !errors.Is(err, store.ErrDigestMismatch) || !strings.Contains(err.Error(), "layer 1 ("+string(m.Layers[0].Digest)) {
			t.Fatalf("got %v, want digest mismatch naming the layer", err)
		}
	})
	t.Run("layer missing", func(t *testing.T) {
		l := newTestLayout(t)
		md := l.image([]layer{{ents: ents, comp: "none"}}, nil)
		l.tag("", md)
		m := readManifestFile(t, l, md)
		os.Remove(l.dir + "/blobs/sha256/" + m.Layers[0].Digest.Encoded())
		_, err := load(t, "oci:"+l.dir, ImportOptions{})
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("got %v, want not found", err)
		}
	})
	t.Run("unknown media type", func(t *testing.T) {
		l := newTestLayout(t)
		md := l.image([]layer{{ents: ents, comp: "none"}}, nil)
		m := readManifestFile(t, l, md)
		m.Layers[0].MediaType = "application/vnd.example.squashfs"
		l.tag("", l.putJSON(ocispec.MediaTypeImageManifest, m))
		_, err := load(t, "oci:"+l.dir, ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), `unsupported layer media type "application/vnd.example.squashfs"`) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestImportLimits(t *testing.T) {
	l := newTestLayout(t)
	l.tag("", l.image([]layer{
		{comp: "gzip", ents: []ent{reg("a", "12345", 0o644), reg("b", "12345", 0o644)}},
		{comp: "gzip", ents: []ent{reg("a", "12345", 0o644), reg("x/y/z", "", 0o644)}},
	}, nil))
	for _, c := range []struct {
		lim  reader.Limits
		want string
	}{
		{reader.Limits{MaxBytes: 14}, `layer 2 (sha256:`},
		{reader.Limits{MaxBytes: 14}, `entry "a": layers hold more than 14 bytes of file content`},
		{reader.Limits{MaxEntries: 3}, `entry "x/y/z": layers hold more than 3 entries`},
		{reader.Limits{MaxDepth: 2}, `entry "x/y/z": path deeper than 2`},
	} {
		_, err := load(t, "oci:"+l.dir, ImportOptions{Limits: &c.lim})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("limits %+v: got %v, want %q", c.lim, err, c.want)
		}
	}
	if _, err := load(t, "oci:"+l.dir, ImportOptions{Limits: &reader.Limits{MaxBytes: 15, MaxEntries: 4, MaxDepth: 3}}); err != nil {
		t.Errorf("at the limits: %v", err)
	}
}

func TestXattrRecords(t *testing.T) {
	xs, err := xattrsFromPAX(map[string]string{
		"LIBARCHIVE.xattr.user.a%3Db": "aGVsbG8=", // "user.a=b" = "hello"
		"LIBARCHIVE.xattr.user.c":     "AAE",      // unpadded
		"LIBARCHIVE.xattr.user.d":     "eA==",
		"SCHILY.xattr.user.d":         "schily",
		"mtime":                       "1.5",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(xs)
	if want := "[{user.a=b [104 101 108 108 111]} {user.c [0 1]} {user.d [115 99 104 105 108 121]}]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := xattrsFromPAX(map[string]string{"LIBARCHIVE.xattr.user.x": "!!"}); err == nil {
		t.Error("bad base64 accepted")
	}
}
