package admin

import (
	"context"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/memstore"
)

// rootStore is a memstore whose list of refs also holds entries that are
// not refs, as a local store's index.json written by another tool does.
type rootStore struct {
	*memstore.Store
	extra []store.Ref
}

func (s *rootStore) ListRoots(ctx context.Context) ([]store.Ref, error) {
	refs, err := s.ListRefs(ctx)
	return append(refs, s.extra...), err
}

// TestGCKeepsEntriesThatAreNotRefs: an image only a shadowed duplicate
// name, or an entry without a name, reaches survives gc, and du counts its
// blobs as reachable; check reports the duplicate name.
func TestGCKeepsEntriesThatAreNotRefs(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	storeImage(t, mem, "x", baseTree())
	shadowed := storeImage(t, mem, "", changedTree())
	foreign := storeImage(t, mem, "", dir("", file("f", random(9, 100<<10))))
	st := &rootStore{Store: mem, extra: []store.Ref{{Name: "x", Descriptor: shadowed}, {Descriptor: foreign}}}
	before := blobs(t, mem)

	u, err := DU(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Images) != 1 || u.UnreachableBytes != 0 {
		t.Errorf("du: %d images, %d unreachable bytes; want 1 and 0", len(u.Images), u.UnreachableBytes)
	}
	rep, err := Check(ctx, st, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Blob != shadowed.Digest {
		t.Errorf("check: %v, want the shadowed entry of x", rep.Problems)
	}
	g, err := GC(ctx, st, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Deleted != 0 || len(blobs(t, mem)) != len(before) {
		t.Fatalf("gc deleted %d blobs that entries of the list reach", g.Deleted)
	}
	// An entry naming a blob the store lacks does not stop gc: nothing can
	// remove it but an edit of index.json.
	ghost := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString("ghost"), Size: 9}
	st.extra = append(st.extra, store.Ref{Descriptor: ghost})
	if g, err = GC(ctx, st, GCOptions{}); err != nil || g.Deleted != 0 {
		t.Fatalf("gc with a dangling entry: %v, %+v", err, g)
	}
	// Without the entries, their images are garbage.
	if g, err = GC(ctx, mem, GCOptions{}); err != nil || g.Deleted == 0 {
		t.Fatalf("gc of the refs alone: %v, %+v", err, g)
	}
}
