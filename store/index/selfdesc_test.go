package index_test

import (
	"context"
	"errors"
	"testing"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
)

// virtualFrames returns the data frames of image res whose blob is
// missing (kept virtual).
func virtualFrames(t *testing.T, st store.Reader, res *writer.Result) []format.Frame {
	t.Helper()
	ctx := context.Background()
	var out []format.Frame
	for _, f := range frames(t, st, res) {
		if _, err := st.Stat(ctx, f.Digest.Digest()); errors.Is(err, store.ErrNotFound) {
			out = append(out, f)
		}
	}
	return out
}

// TestRepairLostUnitDescriptors: units describe themselves, so when the
// store loses their descriptors the virtual frames that rely on them are
// readable again once RepairUnits rebuilt them from the blobs.
func TestRepairLostUnitDescriptors(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(200)
	st := openLocal(t)
	put(t, st, "base", fx.base)
	res := put(t, st, "derived", fx.derived)
	virtual := virtualFrames(t, st, res)
	if len(virtual) == 0 {
		t.Fatal("fixture makes no virtual frames")
	}
	before, err := st.ListUnits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range before {
		if err := st.DeleteUnit(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	readAll := func() error {
		idx, err := index.New(ctx, st, index.InMemory()) // a scan
		if err != nil {
			return err
		}
		for i := range virtual {
			if _, err := idx.StoredFrame(ctx, &virtual[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := readAll(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("virtual frames without unit descriptors: %v, want ErrNotFound", err)
	}
	n, err := index.RepairUnits(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no descriptor rebuilt")
	}
	if err := readAll(); err != nil {
		t.Fatalf("virtual frames after the repair: %v", err)
	}
	if again, err := index.RepairUnits(ctx, st); err != nil || again != 0 {
		t.Errorf("second repair rebuilt %d descriptors, %v; want 0", again, err)
	}
}
