package convert

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/image/unpack"
	"github.com/oci2/oci2/image/unpack/unpacktest"
	"github.com/oci2/oci2/internal/testenv"
	"github.com/oci2/oci2/store/memstore"
)

// describeDir renders a directory tree on disk like describeTree, walking
// in canonical order so hardlink groups are named by the same first path.
func describeDir(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64]string{}
	var walk func(rel string)
	walk = func(rel string) {
		p := filepath.Join(root, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		var kind, extra string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			kind = "dir"
		case unix.S_IFREG:
			kind = "reg"
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			extra = fmt.Sprintf(" %q", b)
		case unix.S_IFLNK:
			kind = "symlink"
			target, _ := os.Readlink(p)
			extra = " -> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			kind = map[bool]string{true: "char", false: "block"}[st.Mode&unix.S_IFMT == unix.S_IFCHR]
			extra = fmt.Sprintf(" %d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case unix.S_IFIFO:
			kind = "fifo"
		}
		s := fmt.Sprintf("%s %04o %d:%d%s", kind, st.Mode&0o7777, st.Uid, st.Gid, extra)
		if kind != "symlink" {
			s += xattrString(t, p)
		}
		if kind == "reg" && st.Nlink > 1 {
			if first, ok := inodes[st.Ino]; ok {
				s += " link=" + first
			} else {
				inodes[st.Ino] = rel
			}
		}
		out[rel] = s
		if kind == "dir" {
			ents, err := os.ReadDir(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents { // sorted by name
				walk(strings.TrimPrefix(rel+"/"+e.Name(), "/"))
			}
		}
	}
	walk("")
	return out
}

func xattrString(t testing.TB, p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
	sort.Strings(names)
	var s string
	for _, name := range names {
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatal(err)
		}
		s += fmt.Sprintf(" %s=%q", name, v[:m])
	}
	return s
}

// TestExportUmociUnpack: umoci unpacks an export to exactly the imported
// tree, and skopeo inspects both transports.
func TestExportUmociUnpack(t *testing.T) {
	testenv.RequireRoot(t, "devices, ownership, security xattrs")
	testenv.RequireTools(t, "umoci", "skopeo")
	ctx := context.Background()
	st, _ := importBase(t)
	dir := t.TempDir()
	// This umoci (0.4) does not know zstd layers; skopeo inspects them.
	for _, comp := range []Compression{CompressionGzip, CompressionNone, CompressionZstd} {
		layout := filepath.Join(dir, "layout-"+string(comp))
		if _, err := Export(ctx, st, "example.com/base:v1", "oci:"+layout+":v1", ExportOptions{Compression: comp}); err != nil {
			t.Fatal(err)
		}
		run(t, "skopeo", "inspect", "oci:"+layout+":v1")
		if comp == CompressionZstd {
			continue
		}
		bundle := filepath.Join(dir, "bundle-"+string(comp))
		run(t, "umoci", "unpack", "--image", layout+":v1", bundle)
		got := describeDir(t, filepath.Join(bundle, "rootfs"))
		diffMaps(t, got, wantBaseTree())
		// Everything, mtimes included, matches what oci2's unpack writes.
		for _, d := range unpacktest.Diff(oci2Unpack(t, st, "example.com/base:v1"), take(t, filepath.Join(bundle, "rootfs")), unpacktest.Options{}) {
			t.Errorf("umoci unpack differs from oci2 unpack: %s", d)
		}
		if comp == CompressionGzip {
			umociRepack(t, layout, bundle)
		}
	}
	arc := filepath.Join(dir, "img.tar")
	if _, err := Export(ctx, st, "example.com/base:v1", "oci-archive:"+arc+":v1", ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	run(t, "skopeo", "inspect", "oci-archive:"+arc+":v1")
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// umociRepack changes the unpacked bundle, lets umoci write a second layer
// (its own whiteouts), imports the result and compares with the bundle.
func umociRepack(t *testing.T, layout, bundle string) {
	rootfs := filepath.Join(bundle, "rootfs")
	for _, p := range []string{"etc/hosts", "hl/b"} {
		if err := os.Remove(filepath.Join(rootfs, p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(rootfs, "opq")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/sh"), []byte("patched"), 0o755); err != nil {
		t.Fatal(err) // also changes bin/sh2, its hardlink
	}
	os.MkdirAll(filepath.Join(rootfs, "new/dir"), 0o700)
	os.WriteFile(filepath.Join(rootfs, "new/dir/f"), []byte("fresh"), 0o640)
	run(t, "umoci", "repack", "--image", layout+":v2", bundle)

	st := memstore.New()
	if _, err := Import(context.Background(), st, "oci:"+layout+":v2", ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := describeImage(t, st, "v2")
	diffMaps(t, got, describeDir(t, rootfs))
}

// TestSkopeoCopies: archives and layouts written by skopeo (including a
// recompression to zstd) import to the same OCIv2 image.
func TestSkopeoCopies(t *testing.T) {
	testenv.RequireTools(t, "skopeo")
	ctx := context.Background()
	st, res := importBase(t)
	dir := t.TempDir()
	layout := filepath.Join(dir, "exported")
	if _, err := Export(ctx, st, "example.com/base:v1", "oci:"+layout+":v1", ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dst  string
		args []string
	}{
		{"oci-archive:" + filepath.Join(dir, "s.tar") + ":docker.io/library/base:v1", nil},
		{"oci:" + filepath.Join(dir, "zst") + ":v1", []string{"--dest-compress-format", "zstd"}},
	} {
		args := append([]string{"copy", "-q"}, c.args...)
		run(t, "skopeo", append(args, "oci:"+layout+":v1", c.dst)...)
		back := memstore.New()
		br, err := Import(ctx, back, c.dst, ImportOptions{})
		if err != nil {
			t.Fatalf("import %s: %v", c.dst, err)
		}
		if br.Manifest.Digest != res.Manifest.Digest {
			t.Errorf("%s: imported manifest %s, want %s", c.dst, br.Manifest.Digest, res.Manifest.Digest)
		}
	}
}

func oci2Unpack(t *testing.T, st *memstore.Store, name string) unpacktest.Snapshot {
	t.Helper()
	img, cr := openNamed(t, st, name)
	dest := filepath.Join(t.TempDir(), "rootfs")
	if _, err := unpack.Unpack(context.Background(), img, cr, dest, unpack.Options{}); err != nil {
		t.Fatal(err)
	}
	return take(t, dest)
}

func take(t *testing.T, dir string) unpacktest.Snapshot {
	t.Helper()
	s, err := unpacktest.Take(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
