package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
)

func TestUnitDescriptors(t *testing.T) {
	ctx := context.Background()
	st, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if ds, err := st.ListUnits(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("empty store: %v %v", ds, err)
	}
	a, b := digest.FromString("a"), digest.FromString("b")
	for _, d := range []digest.Digest{b, a} {
		if err := st.PutUnit(ctx, d, []byte("desc of "+d.String())); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PutUnit(ctx, a, []byte("replaced")); err != nil {
		t.Fatal(err)
	}
	// Stray files are not units.
	os.WriteFile(filepath.Join(st.Dir(), "oci2", "units", "README"), []byte("x"), 0o644)
	ds, err := st.ListUnits(ctx)
	if err != nil || len(ds) != 2 || ds[0] > ds[1] {
		t.Fatalf("ListUnits = %v, %v", ds, err)
	}
	if got, err := st.ReadUnit(ctx, a); err != nil || string(got) != "replaced" {
		t.Fatalf("ReadUnit = %q, %v", got, err)
	}
	if err := st.DeleteUnit(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteUnit(ctx, a); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	if _, err := st.ReadUnit(ctx, a); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted unit: %v", err)
	}
	if err := st.PutUnit(ctx, "sha256:../../x", nil); !errors.Is(err, store.ErrInvalidDigest) {
		t.Fatalf("bad digest: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(st.Dir(), "oci2", "ingest")); len(ents) != 0 {
		t.Errorf("%d temp files left", len(ents))
	}
}
