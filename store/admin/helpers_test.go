package admin

import (
	"context"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/internal/imagetest"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/memstore"
)

const mtime = 1700000000

func dir(name string, kids ...*writer.Node) *writer.Node { return imagetest.Dir(name, mtime, kids...) }

func file(name string, data []byte) *writer.Node { return imagetest.File(name, mtime, data) }

func symlink(name, target string) *writer.Node {
	return &writer.Node{Entry: format.Entry{Name: name, Type: format.TypeSymlink, Mode: 0o777, MtimeSec: mtime, Target: target}}
}

// random returns n seeded pseudo-random (incompressible) bytes.
var random = imagetest.Random

// storeImage writes root as an image named name and returns its index descriptor.
func storeImage(t *testing.T, st *memstore.Store, name string, root *writer.Node) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	release, err := st.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	// Canonical frames only: these tests count frame blobs (units have
	// their own tests, units_test.go).
	idx, err := index.New(ctx, st, index.WithUnits(nil))
	if err != nil {
		t.Fatal(err)
	}
	_, desc := imagetest.Tag(t, st, name, root, writer.Options{FrameIndex: idx})
	return desc
}

// baseTree is an image of a few MiB: big random files (several data frames),
// a shared subtree and small files.
func baseTree() *writer.Node {
	return dir("",
		dir("bin", file("big", random(1, 3<<20)), file("tool", random(2, 700<<10))),
		dir("etc", file("hosts", []byte("127.0.0.1 localhost\n")), symlink("mtab", "/proc/mounts")),
		dir("usr", dir("share", file("doc", random(3, 200<<10)), file("zeros", make([]byte, 1<<20)))),
		file("readme", []byte("hello\n")),
	)
}

// changedTree differs from baseTree: bin/tool modified, readme removed,
// etc/new added, etc/hosts re-moded, usr unchanged.
func changedTree() *writer.Node {
	hosts := file("hosts", []byte("127.0.0.1 localhost\n"))
	hosts.Mode = 0o600
	return dir("",
		dir("bin", file("big", random(1, 3<<20)), file("tool", random(4, 700<<10))),
		dir("etc", hosts, symlink("mtab", "/proc/mounts"), file("new", random(5, 100<<10))),
		dir("usr", dir("share", file("doc", random(3, 200<<10)), file("zeros", make([]byte, 1<<20)))),
	)
}

// framesOf lists the frame digests of the image behind ref.
func framesOf(t *testing.T, st *memstore.Store, ref string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	desc, err := st.GetRef(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	w := newWalker(st)
	g := newGraph()
	w.walk(ctx, g, desc)
	if len(g.Problems) > 0 {
		t.Fatal(g.Problems[0].Err)
	}
	out := map[string]bool{}
	for d := range g.Frames {
		out[d.String()] = true
	}
	return out
}
