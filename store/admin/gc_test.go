package admin

import (
	"context"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/memstore"
)

func blobs(t *testing.T, st *memstore.Store) map[digest.Digest]int64 {
	t.Helper()
	out := map[digest.Digest]int64{}
	err := st.ListBlobs(context.Background(), func(i store.Info) error {
		out[i.Digest] = i.Size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGCRemovesExactlyTheDead(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	storeImage(t, st, "a", baseTree())
	storeImage(t, st, "b", changedTree())
	onlyA := framesOf(t, st, "a")
	for d := range framesOf(t, st, "b") {
		delete(onlyA, d)
	}
	if len(onlyA) == 0 {
		t.Fatal("a has no frames of its own")
	}
	junk := []byte("unreferenced")
	if err := st.PutBlob(ctx, digest.FromBytes(junk), junk); err != nil {
		t.Fatal(err)
	}
	// Nothing is dead but the junk blob.
	rep, err := GC(ctx, st, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 1 || rep.DeletedBytes != int64(len(junk)) {
		t.Fatalf("first gc: %+v", rep)
	}

	before := blobs(t, st)
	if err := st.DeleteRef(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	dry, err := GC(ctx, st, GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := blobs(t, st); len(got) != len(before) {
		t.Fatalf("dry run deleted %d blobs", len(before)-len(got))
	}
	rep, err = GC(ctx, st, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *dry != (GCReport{DryRun: true, Refs: rep.Refs, LiveBlobs: rep.LiveBlobs, LiveBytes: rep.LiveBytes,
		Deleted: rep.Deleted, DeletedBytes: rep.DeletedBytes}) {
		t.Errorf("dry run %+v, real %+v", dry, rep)
	}
	after := blobs(t, st)
	var freed int64
	for d, n := range before {
		if _, ok := after[d]; !ok {
			freed += n
		}
	}
	if freed != rep.DeletedBytes || int64(len(before)-len(after)) != rep.Deleted {
		t.Errorf("report %+v; actually freed %d blobs, %d bytes", rep, len(before)-len(after), freed)
	}
	for d := range onlyA {
		if _, ok := after[digest.Digest(d)]; ok {
			t.Errorf("frame %s only a used survived", d)
		}
	}
	for d := range framesOf(t, st, "b") {
		if _, ok := after[digest.Digest(d)]; !ok {
			t.Errorf("frame %s of b deleted", d)
		}
	}
	if c := mustCheck(t, st, true); !c.OK() {
		t.Fatalf("check after gc: %v", c.Problems)
	}
	// Everything left is live.
	if rep, err := GC(ctx, st, GCOptions{}); err != nil || rep.Deleted != 0 {
		t.Fatalf("third gc: %+v, %v", rep, err)
	}
}

func TestGCBusy(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	storeImage(t, st, "a", baseTree())
	release, err := st.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GC(ctx, st, GCOptions{}); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("gc under a lease: %v, want ErrLocked", err)
	}
	release()
	if _, err := GC(ctx, st, GCOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestGCRefusesIncompleteMark(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	storeImage(t, st, "a", baseTree())
	md := mustResolve(t, st, "a")
	if err := st.DeleteBlob(ctx, md.Digest); err != nil {
		t.Fatal(err)
	}
	before := blobs(t, st)
	if _, err := GC(ctx, st, GCOptions{}); err == nil || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("gc with a missing manifest: %v", err)
	}
	if len(blobs(t, st)) != len(before) {
		t.Fatal("gc deleted blobs although marking failed")
	}
}
