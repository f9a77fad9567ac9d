package transfer_test

import (
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/registry"
	"github.com/oci2/oci2/store/registry/registrytest"
	"github.com/oci2/oci2/transfer"
)

// TestInvalidTreesRefused: an image in a registry whose tree holds a
// hardlink to a directory (SPEC.md §4.3) is not named by Pull, not opened
// by OpenLazy (a mount or a build would serve it), and not copied by Copy;
// Pull refuses it before it fetches a data frame.
func TestInvalidTreesRefused(t *testing.T) {
	srv := registrytest.StartInProcess(t)
	ctx := t.Context()
	repo, err := registry.New(ctx, srv.Host+"/bad/img", registry.Options{Push: true, Auth: authn.Anonymous})
	if err != nil {
		t.Fatal(err)
	}
	root := readertest.Dir("", 0o755, readertest.File("big", 0o644, random(3, 2<<20)),
		readertest.Dir("d", 0o755), readertest.Hardlink("z", "d"))
	x, err := readertest.BuildIndexed(ctx, repo, readertest.Image{Streams: readertest.Encode(root)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.PutManifest(ctx, x.Manifest.Digest.String(), x.Manifest.MediaType, x.ManifestBytes); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.PutManifest(ctx, "v1", ocispec.MediaTypeImageIndex, x.IndexBytes); err != nil {
		t.Fatal(err)
	}
	ref := srv.Host + "/bad/img:v1"

	st := newStore(t)
	_, err = transfer.Pull(ctx, st, ref, transfer.PullOptions{Options: opts(nil)})
	if !errors.Is(err, reader.ErrInvalidImage) {
		t.Errorf("Pull: %v, want ErrInvalidImage", err)
	}
	if refs, err := st.ListRefs(ctx); err != nil || len(refs) != 0 {
		t.Errorf("Pull named the invalid image: %v %v", refs, err)
	}
	img, err := reader.Open(ctx, repo, x.Manifest)
	if err != nil || len(img.DataPacks) == 0 {
		t.Fatalf("opening the image: %v (%d data packs)", err, len(img.DataPacks))
	}
	for _, p := range img.DataPacks {
		for _, f := range p.Index.Frames {
			if _, err := st.Stat(ctx, f.Digest.Digest()); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Pull fetched data frame %s of the invalid image: %v", f.Digest, err)
			}
		}
	}
	if _, err := transfer.OpenLazy(ctx, newStore(t), ref, transfer.PullOptions{Options: opts(nil)}); !errors.Is(err, reader.ErrInvalidImage) {
		t.Errorf("OpenLazy: %v, want ErrInvalidImage", err)
	}
	if _, err := transfer.Copy(ctx, ref, srv.Host+"/copied/img:v1", transfer.CopyOptions{Options: opts(nil)}); !errors.Is(err, reader.ErrInvalidImage) {
		t.Errorf("Copy: %v, want ErrInvalidImage", err)
	}
}
