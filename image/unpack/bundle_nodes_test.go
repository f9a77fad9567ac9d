//go:build linux

package unpack_test

import (
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	rt "github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/image/unpack"
	"github.com/oci2/oci2/internal/regfile/regfiletest"
	"github.com/oci2/oci2/internal/testenv"
)

// TestSpecNeverOpensNodes: an image whose /etc/passwd or /etc/group is a
// device node, a fifo or a symlink to one is refused, and the node is never
// opened (inotify reports every open but O_PATH's, which reaches no driver).
// Before issue 14 the bundle writer opened the node and only then checked
// its type: a watchdog device reboots the host, a tty became the
// controlling terminal.
func TestSpecNeverOpensNodes(t *testing.T) {
	testenv.RequireRoot(t, "an unpack creates device nodes as root only")
	null := func(name string) *rt.Node { return rt.Device(name, format.TypeChar, 0o644, 1, 3) }
	cases := []struct {
		name  string
		etc   []*rt.Node
		dev   []*rt.Node
		watch string // the node that must not be opened
		want  string
	}{
		{"passwd char device", []*rt.Node{null("passwd")}, nil, "etc/passwd",
			"/etc/passwd in the rootfs: not a regular file (character device 1:3)"},
		{"passwd fifo", []*rt.Node{rt.Fifo("passwd", 0o644)}, nil, "etc/passwd", "not a regular file (fifo)"},
		{"group char device", []*rt.Node{null("group")}, nil, "etc/group",
			"/etc/group in the rootfs: not a regular file (character device 1:3)"},
		{"group block device", []*rt.Node{rt.Device("group", format.TypeBlock, 0o600, 7, 200)}, nil, "etc/group",
			"not a regular file (block device 7:200)"},
		{"passwd symlink to a device", []*rt.Node{rt.Symlink("passwd", "/dev/watchdog")}, []*rt.Node{null("watchdog")},
			"dev/watchdog", "not a regular file (character device 1:3)"},
		{"passwd symlink up to a device", []*rt.Node{rt.Symlink("passwd", "../../../../dev/tty")}, []*rt.Node{null("tty")},
			"dev/tty", "not a regular file (character device 1:3)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := rt.Dir("", 0o755, rt.Dir("dev", 0o755, tc.dev...), rt.Dir("etc", 0o755, tc.etc...))
			cfg := &ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
				Config: ocispec.ImageConfig{User: "app", Cmd: []string{"x"}}, RootFS: ocispec.RootFS{Type: "layers"}}
			img, cr := imageOf(t, rt.Image{Streams: rt.Encode(root), Config: cfg})
			sb := newSandbox(t)
			if _, err := unpack.Unpack(t.Context(), img, cr, sb.dest, unpack.Options{}); err != nil {
				t.Fatal(err)
			}
			check := regfiletest.WatchOpens(t, filepath.Join(sb.dest, tc.watch))
			_, err := unpack.Spec(img, sb.dest, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Spec: error %v, want %q", err, tc.want)
			}
			check()
			sb.check(t)
		})
	}
}
