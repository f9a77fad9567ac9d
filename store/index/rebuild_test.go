package index_test

import (
	"testing"

	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/index"
)

// TestRebuildHoldsOneRun: rebuilding the index of a store holding several
// runs' worth of entries (its index files deleted) never holds more than a
// run in memory: it writes runs as index files and merges them (more runs
// than maxTables), and the files it leaves locate every frame and chunk a
// scan held whole in memory does.
func TestRebuildHoldsOneRun(t *testing.T) {
	fx := newFixture(1000)
	st := openLocal(t)
	opts := []index.Option{index.WithDir(st.IndexDir()), index.WithUnitSize(256 << 10)}
	results := []*writer.Result{put(t, st, "base", fx.base, opts...), put(t, st, "derived", fx.derived, opts...)}
	// The rebuild as it was: one run, whatever the store holds.
	if err := index.RemoveFiles(st.IndexDir()); err != nil {
		t.Fatal(err)
	}
	whole, _ := openCounted(t, st)
	wantFrames, wantChunks := whole.Len()

	run := wantChunks / 12
	t.Logf("%d frames, %d chunks; runs of %d entries", wantFrames, wantChunks, run)
	if held := index.HeldMax(whole); held < wantChunks {
		t.Fatalf("a rebuild in one run held %d entries, fewer than the %d chunks", held, wantChunks)
	}
	if err := index.RemoveFiles(st.IndexDir()); err != nil {
		t.Fatal(err)
	}
	defer index.SetRunEntries(run)()
	idx, reads := openCounted(t, st)
	if reads == 0 {
		t.Fatal("no scan after the index files were deleted")
	}
	if held := index.HeldMax(idx); held > run || held < run/2 {
		t.Errorf("the rebuild held up to %d entries in memory, want at most a run of %d (and about that)", held, run)
	}
	if n := len(indexFiles(t, st)); n < 2 || n > 9 {
		t.Errorf("%d index files after the rebuild: want several runs, merged to at most 9", n)
	}
	if f, c := idx.Len(); f != wantFrames || c != wantChunks {
		t.Errorf("the rebuilt files locate %d frames and %d chunks, a rebuild in one run %d and %d", f, c, wantFrames, wantChunks)
	}
	requireIndexed(t, st, idx, results...)
	again, reads := openCounted(t, st)
	if reads != 0 {
		t.Errorf("after the rebuild a new Index read %d blobs, want 0", reads)
	}
	requireIndexed(t, st, again, results...)
}
