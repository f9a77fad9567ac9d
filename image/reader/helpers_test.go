package reader_test

import (
	"errors"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	rt "github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/store/memstore"
)

var randBytes = rt.RandBytes

// sampleTree is a small valid fixture with every entry type.
func sampleTree() *rt.Node {
	big := append(randBytes(1, 100<<10), make([]byte, 64<<10)...)
	big = append(big, randBytes(2, 5000)...)
	return rt.Dir("", 0o755,
		rt.Dir("bin", 0o755,
			rt.File("sh", 0o755, randBytes(3, 3000)),
			rt.Hardlink("sh2", "bin/sh"),
		),
		rt.Dir("etc", 0o755,
			rt.File("empty", 0o644, nil),
			rt.File("passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")),
		),
		rt.File("big", 0o600, big),
		rt.Symlink("link", "bin/sh"),
		rt.Fifo("fifo", 0o644),
		rt.Device("null", format.TypeChar, 0o666, 1, 3),
		rt.Dir("z", 0o700, rt.Dir("empty", 0o555)),
	)
}

// build stores img in a new memstore.
func build(t testing.TB, img rt.Image) (*memstore.Store, ocispec.Descriptor) {
	t.Helper()
	st := memstore.New()
	desc, err := rt.Build(t.Context(), st, img)
	if err != nil {
		t.Fatalf("building image: %v", err)
	}
	return st, desc
}

// openFixture builds and opens a fixture image with local frames.
func openFixture(t testing.TB, root *rt.Node) (*memstore.Store, *reader.Image, *reader.ChunkReader) {
	t.Helper()
	st, desc := build(t, rt.Image{Streams: rt.Encode(root)})
	img, err := reader.Open(t.Context(), st, desc)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return st, img, reader.NewChunkReader(img, reader.LocalFrames(st))
}

// wantErr fails unless err matches target (when non-nil) and mentions every
// substring.
func wantErr(t testing.TB, err, target error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v %q", target, subs)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %q is not %q", err, target)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}
