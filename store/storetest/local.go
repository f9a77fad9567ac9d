package storetest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/store"
)

// NewLocalStoreFunc returns a fresh, empty store with the local roles.
type NewLocalStoreFunc func(t *testing.T) store.LocalStore

// RunLocal runs the conformance tests of the roles a store on this machine
// adds (store.LocalStore): Run's, then hashed puts, Sync and Keep, unit
// descriptors, ingest cleaning, the list of roots and the index's home.
func RunLocal(t *testing.T, newStore NewLocalStoreFunc) {
	Run(t, func(t *testing.T) store.Store { return newStore(t) })
	runAll(t, newStore, []subtest[store.LocalStore]{
		{"PutHashedBlob", testPutHashed},
		{"SyncKeep", testSyncKeep},
		{"Units", testUnits},
		{"UnitErrors", testUnitErrors},
		{"CleanIngest", testCleanIngest},
		{"ListRoots", testListRoots},
		{"IndexHome", testIndexHome},
	})
}

func testPutHashed(t *testing.T, st store.LocalStore) {
	ctx := t.Context()
	b, d := blob(40, 5000)
	for range 2 { // idempotent
		if err := st.PutHashedBlob(ctx, d, b); err != nil {
			t.Fatalf("PutHashedBlob: %v", err)
		}
	}
	got, err := st.ReadBlob(ctx, d, 0)
	if err != nil || !slices.Equal(got, b) {
		t.Fatalf("ReadBlob after PutHashedBlob: %v", err)
	}
	if err := st.PutHashedBlob(ctx, "sha256:nothex", b); !errors.Is(err, store.ErrInvalidDigest) {
		t.Errorf("invalid digest: %v", err)
	}
}

func testSyncKeep(t *testing.T, st store.LocalStore) {
	ctx := t.Context()
	if err := st.Sync(ctx); err != nil {
		t.Fatalf("Sync of an empty store: %v", err)
	}
	b, d := blob(41, 300)
	put(t, st, b)
	if err := st.Keep(ctx, d); err != nil {
		t.Errorf("Keep of a stored blob: %v", err)
	}
	if err := st.Sync(ctx); err != nil {
		t.Errorf("Sync: %v", err)
	}
	if err := st.Sync(ctx); err != nil {
		t.Errorf("Sync with nothing pending: %v", err)
	}
	_, missing := blob(42, 300)
	if err := st.Keep(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Keep of a missing blob: %v, want ErrNotFound", err)
	}
}

func testUnits(t *testing.T, st store.LocalStore) {
	ctx := t.Context()
	if ds, err := st.ListUnits(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("ListUnits of an empty store: %v, %v", ds, err)
	}
	var want []digest.Digest
	for i := range 3 {
		_, d := blob(uint64(50+i), 100)
		if err := st.PutUnit(ctx, d, []byte("first "+d.String())); err != nil {
			t.Fatalf("PutUnit: %v", err)
		}
		if err := st.PutUnit(ctx, d, []byte(d.String())); err != nil { // replaces
			t.Fatalf("PutUnit again: %v", err)
		}
		want = append(want, d)
	}
	slices.Sort(want)
	got, err := st.ListUnits(ctx)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ListUnits = %v, %v; want %v (sorted)", got, err, want)
	}
	for _, d := range want {
		b, err := st.ReadUnit(ctx, d)
		if err != nil || string(b) != d.String() {
			t.Errorf("ReadUnit(%s) = %q, %v", d, b, err)
		}
	}
	if err := st.DeleteUnit(ctx, want[1]); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteUnit(ctx, want[1]); err != nil {
		t.Errorf("deleting a missing unit: %v", err)
	}
	if _, err := st.ReadUnit(ctx, want[1]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReadUnit of a deleted unit: %v, want ErrNotFound", err)
	}
	if got, _ := st.ListUnits(ctx); len(got) != 2 {
		t.Errorf("ListUnits after a delete: %v", got)
	}
}

func testUnitErrors(t *testing.T, st store.LocalStore) {
	ctx := t.Context()
	bad := digest.Digest("sha256:../../escape")
	if err := st.PutUnit(ctx, bad, []byte("x")); !errors.Is(err, store.ErrInvalidDigest) {
		t.Errorf("PutUnit of an invalid digest: %v", err)
	}
	if _, err := st.ReadUnit(ctx, bad); !errors.Is(err, store.ErrInvalidDigest) {
		t.Errorf("ReadUnit of an invalid digest: %v", err)
	}
	if err := st.DeleteUnit(ctx, bad); !errors.Is(err, store.ErrInvalidDigest) {
		t.Errorf("DeleteUnit of an invalid digest: %v", err)
	}
}

func testCleanIngest(t *testing.T, st store.LocalStore) {
	ctx := t.Context()
	b, d := blob(43, 1000)
	put(t, st, b)
	if _, err := st.CleanIngest(ctx); err != nil {
		t.Fatalf("CleanIngest: %v", err)
	}
	if _, err := st.Stat(ctx, d); err != nil {
		t.Errorf("CleanIngest removed a stored blob: %v", err)
	}
}

// testListRoots: every ref is a root, with its descriptor; a deleted ref is
// not.
func testListRoots(t *testing.T, st store.LocalStore) {
	ctx := t.Context()
	if roots, err := st.ListRoots(ctx); err != nil || len(roots) != 0 {
		t.Fatalf("ListRoots of an empty store: %v, %v", roots, err)
	}
	a, b := putDesc(t, st, 50, nil), putDesc(t, st, 51, nil)
	for name, d := range map[string]ocispec.Descriptor{"a": a, "b": b} {
		if err := st.SetRef(ctx, name, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DeleteRef(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	roots, err := st.ListRoots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || roots[0].Name != "a" || roots[0].Descriptor.Digest != a.Digest || roots[0].Descriptor.Size != a.Size {
		t.Errorf("ListRoots = %+v, want ref a to %s alone", roots, a.Digest)
	}
}

// testIndexHome: IndexDir is stable, and either "" (an index in memory) or
// an absolute directory that is none of the store's business: files there
// are not blobs, refs or ingest leftovers, and survive the store's
// cleaning.
func testIndexHome(t *testing.T, st store.LocalStore) {
	ctx := t.Context()
	dir := st.IndexDir()
	if st.IndexDir() != dir {
		t.Fatalf("IndexDir changed: %q then %q", dir, st.IndexDir())
	}
	if dir == "" {
		return
	}
	if !filepath.IsAbs(dir) {
		t.Fatalf("IndexDir %q is not absolute", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "0123456789abcdef0123456789abcdef.idx")
	if err := os.WriteFile(file, []byte("an index file"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, d := blob(60, 300)
	put(t, st, b)
	var listed []digest.Digest
	err := st.ListBlobs(ctx, func(i store.Info) error {
		listed = append(listed, i.Digest)
		return nil
	})
	if err != nil || !slices.Equal(listed, []digest.Digest{d}) {
		t.Errorf("ListBlobs with an index file = %v, %v; want %s alone", listed, err, d)
	}
	if refs, err := st.ListRefs(ctx); err != nil || len(refs) != 0 {
		t.Errorf("ListRefs with an index file = %v, %v", refs, err)
	}
	if n, err := st.CleanIngest(ctx); err != nil || n != 0 {
		t.Errorf("CleanIngest with an index file = %d, %v", n, err)
	}
	if got, err := os.ReadFile(file); err != nil || string(got) != "an index file" {
		t.Errorf("index file after the store's cleaning: %q, %v", got, err)
	}
}
