package admin

import (
	"context"
	"testing"

	"github.com/oci2/oci2/store/memstore"
)

func TestDU(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	storeImage(t, st, "a", baseTree())
	storeImage(t, st, "b", changedTree())
	storeImage(t, st, "c", baseTree())
	u, err := DU(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Images) != 3 {
		t.Fatalf("images: %+v", u.Images)
	}
	byName := map[string]ImageUsage{}
	for _, i := range u.Images {
		byName[i.Name] = i
		if i.UniqueBytes+i.SharedBytes != i.StoredBytes || i.StoredBytes <= 0 {
			t.Errorf("%s: %+v", i.Name, i)
		}
	}
	const logicalA = 3<<20 + 700<<10 + 20 + 200<<10 + 1<<20 + 6
	const logicalB = 3<<20 + 700<<10 + 20 + 100<<10 + 200<<10 + 1<<20
	if a := byName["a"]; a.LogicalBytes != logicalA || a.UniqueBytes != 0 {
		t.Errorf("a (same image as c): %+v, want logical %d and nothing unique", a, logicalA)
	}
	if b := byName["b"]; b.LogicalBytes != logicalB || b.UniqueBytes == 0 || b.SharedBytes == 0 {
		t.Errorf("b: %+v, want logical %d, some unique and some shared", b, logicalB)
	}
	if u.LogicalBytes != 2*logicalA+logicalB {
		t.Errorf("total logical %d, want %d", u.LogicalBytes, 2*logicalA+logicalB)
	}
	var all int64
	for _, n := range blobs(t, st) {
		all += n
	}
	if u.StoredBytes != all || u.UnreachableBytes != 0 || u.ReachableBytes != all {
		t.Errorf("usage %+v, store holds %d bytes", u, all)
	}
	// Removing c makes a's bytes unique; removing b leaves its frames unreachable.
	st.DeleteRef(ctx, "c")
	st.DeleteRef(ctx, "b")
	u, err = DU(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if a := u.Images[0]; a.UniqueBytes != a.StoredBytes {
		t.Errorf("a alone: %+v", a)
	}
	rep, err := GC(ctx, st, GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if u.UnreachableBytes == 0 || u.UnreachableBytes != rep.DeletedBytes {
		t.Errorf("unreachable %d, gc would free %d", u.UnreachableBytes, rep.DeletedBytes)
	}
}
