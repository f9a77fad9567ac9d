package tests

import (
	"errors"
	"os/exec"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/store/local"
	"github.com/oci2/oci2/store/registry"
)

// hostileTree is a hand-made image tree that breaks SPEC.md §4.2 or §4.3,
// and a word the error about it must contain.
type hostileTree struct {
	name string
	want string
	root *readertest.Node
}

func xattrFile(name, xattr string) *readertest.Node {
	f := readertest.File(name, 0o644, []byte("payload"))
	f.Xattrs = []format.Xattr{{Name: xattr, Value: []byte("y")}}
	return f
}

// hostileTrees are the invalid trees a store must never name.
func hostileTrees() []hostileTree {
	dir, file, link := readertest.Dir, readertest.File, readertest.Hardlink
	data := []byte("hello")
	return []hostileTree{
		{"hardlink-to-dir", "is not a regular file", dir("", 0o755, dir("d", 0o755), link("z", "d"))},
		{"hardlink-to-later", "does not precede", dir("", 0o755, link("a", "b"), file("b", 0o644, data))},
		{"hardlink-to-missing", "does not exist", dir("", 0o755, file("a", 0o644, data), link("z", "nope"))},
		{"hardlink-to-symlink", "is not a regular file", dir("", 0o755, readertest.Symlink("a", "b"), link("z", "a"))},
		{"hardlink-through-file", "is not a directory", dir("", 0o755, file("a", 0o644, data), link("z", "a/b"))},
		{"trusted-overlay-xattr", "overlayfs xattr", dir("", 0o755, xattrFile("f", "trusted.overlay.opaque"))},
		{"user-overlay-xattr", "overlayfs xattr", dir("", 0o755, dir("d", 0o755, xattrFile("f", "user.overlay.redirect")))},
		{"unsorted-names", "not sorted", &readertest.Node{Entry: readertest.Dir("", 0o755).Entry, Unsorted: true,
			Children: []*readertest.Node{file("b", 0o644, data), file("a", 0o644, data)}}},
	}
}

// buildHostile stores root as an oci2 image with its index in st.
func buildHostile(t *testing.T, st readertest.Store, root *readertest.Node) *readertest.Indexed {
	t.Helper()
	x, err := readertest.BuildIndexed(t.Context(), st, readertest.Image{Streams: readertest.Encode(root)})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// pushHostile puts root as host/repo:tag with the registry client itself
// (what `oci2 push` now refuses to send).
func pushHostile(t *testing.T, host, repo, tag string, root *readertest.Node) digest.Digest {
	t.Helper()
	r, err := registry.New(t.Context(), host+"/"+repo, registry.Options{Push: true, Auth: authn.Anonymous})
	if err != nil {
		t.Fatal(err)
	}
	x := buildHostile(t, r, root)
	if _, err := r.PutManifest(t.Context(), x.Manifest.Digest.String(), x.Manifest.MediaType, x.ManifestBytes); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutManifest(t.Context(), tag, ocispec.MediaTypeImageIndex, x.IndexBytes); err != nil {
		t.Fatal(err)
	}
	return x.Index.Digest
}

// remoteHasTag reports whether host/repo has tag.
func remoteHasTag(t *testing.T, host, repo, tag string) bool {
	t.Helper()
	r, err := registry.New(t.Context(), host+"/"+repo, registry.Options{Auth: authn.Anonymous})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = r.GetManifest(t.Context(), tag)
	return err == nil
}

// nameHostile stores root in the store at dir and names it, as another
// tool (or an older oci2) could have.
func nameHostile(t *testing.T, dir, name string, root *readertest.Node) ocispec.Descriptor {
	t.Helper()
	st, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	x := buildHostile(t, st, root)
	if err := st.SetRef(t.Context(), name, x.Index); err != nil {
		t.Fatal(err)
	}
	return x.Index
}

// exitCode is the exit status of a finished command (0 when it succeeded).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
