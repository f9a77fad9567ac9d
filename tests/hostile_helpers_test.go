package tests

import (
	"encoding/json"
	"errors"
	"os/exec"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/chunkstore/local"
	"github.com/oci2/oci2/chunkstore/registry"
	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/reader/readertest"
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

// buildHostile stores root as an oci2 image in st (frames, packs, pack
// indexes, config, manifest and an index marked as oci2's) and returns the
// manifest and index descriptors with their bytes.
func buildHostile(t *testing.T, st readertest.Store, root *readertest.Node) (man, idx ocispec.Descriptor, manBytes, idxBytes []byte) {
	t.Helper()
	ctx := t.Context()
	man, err := readertest.Build(ctx, st, readertest.Image{Streams: readertest.Encode(root)})
	if err != nil {
		t.Fatal(err)
	}
	if manBytes, err = st.ReadBlob(ctx, man.Digest, 0); err != nil {
		t.Fatal(err)
	}
	md := man
	md.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64", OSFeatures: []string{format.PlatformFeature}}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{md}}
	if idxBytes, err = json.Marshal(index); err != nil {
		t.Fatal(err)
	}
	if idx, err = readertest.PutBlob(ctx, st, ocispec.MediaTypeImageIndex, idxBytes); err != nil {
		t.Fatal(err)
	}
	return man, idx, manBytes, idxBytes
}

// pushHostile puts root as host/repo:tag with the registry client itself
// (what `oci2 push` now refuses to send).
func pushHostile(t *testing.T, host, repo, tag string, root *readertest.Node) digest.Digest {
	t.Helper()
	r, err := registry.New(t.Context(), host+"/"+repo, registry.Options{Push: true, Auth: authn.Anonymous})
	if err != nil {
		t.Fatal(err)
	}
	man, idx, manBytes, idxBytes := buildHostile(t, r, root)
	if _, err := r.PutManifest(t.Context(), man.Digest.String(), man.MediaType, manBytes); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutManifest(t.Context(), tag, ocispec.MediaTypeImageIndex, idxBytes); err != nil {
		t.Fatal(err)
	}
	return idx.Digest
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
	_, idx, _, _ := buildHostile(t, st, root)
	if err := st.SetRef(t.Context(), name, idx); err != nil {
		t.Fatal(err)
	}
	return idx
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
