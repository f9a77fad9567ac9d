package index_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/admin"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/local"
)

// countingStore counts the blobs an Index reads: a scan reads every
// manifest and pack index, an Index opened from its files reads none.
type countingStore struct {
	*local.Store
	reads atomic.Int64
}

func (c *countingStore) ReadBlob(ctx context.Context, d digest.Digest, max int64) ([]byte, error) {
	c.reads.Add(1)
	return c.Store.ReadBlob(ctx, d, max)
}

func indexFiles(t *testing.T, st *local.Store) []string {
	t.Helper()
	es, err := os.ReadDir(st.IndexDir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if strings.HasSuffix(e.Name(), ".idx") {
			out = append(out, filepath.Join(st.IndexDir(), e.Name()))
		}
	}
	return out
}

// persisted writes the base and derived images of fx, each with a fresh
// Index on the store's index files (one process each).
func persisted(t *testing.T, fx *fixture) (*local.Store, []*writer.Result) {
	st := openLocal(t)
	dir := index.WithDir(st.IndexDir())
	return st, []*writer.Result{put(t, st, "base", fx.base, dir), put(t, st, "derived", fx.derived, dir)}
}

// openCounted opens a new Index on st's index files and returns it with the
// number of blobs it read.
func openCounted(t *testing.T, st *local.Store) (*index.Index, int64) {
	t.Helper()
	cs := &countingStore{Store: st}
	idx, err := index.New(context.Background(), cs, index.WithDir(st.IndexDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	return idx, cs.reads.Load()
}

// requireIndexed checks that idx offers every frame of every result (as a
// stored or a virtual frame) and reads every chunk back.
func requireIndexed(t *testing.T, st *local.Store, idx *index.Index, results ...*writer.Result) {
	t.Helper()
	ctx := context.Background()
	n := 0
	err := idx.WithSession(ctx, func(ctx context.Context, s *index.Session) error {
		for _, res := range results {
			for _, f := range frames(t, st, res) {
				got, ok, err := s.LookupFrame(ctx, pack.FrameKey(f.Chunks))
				if err != nil || !ok || got.Digest != f.Digest {
					t.Fatalf("frame %s: LookupFrame = %s, %v, %v", f.Digest, got.Digest, ok, err)
				}
				b, err := idx.ReadChunk(ctx, f.Chunks[len(f.Chunks)-1].ID)
				if err != nil {
					t.Fatalf("frame %s: %v", f.Digest, err)
				}
				if format.Sum(b) != f.Chunks[len(f.Chunks)-1].ID {
					t.Fatalf("frame %s: wrong chunk bytes", f.Digest)
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no frames checked")
	}
}

// TestIndexPersistsAcrossReopen: an Index opened on the index files of
// earlier writes finds their frames and chunks, reading only the blobs of
// the image stored since the last scan (a write indexes its frames, not its
// manifest), and after that none.
func TestIndexPersistsAcrossReopen(t *testing.T) {
	st, results := persisted(t, newFixture(120))
	if len(indexFiles(t, st)) == 0 {
		t.Fatal("no index files written")
	}
	full := &countingStore{Store: st}
	mem, err := index.New(context.Background(), full, index.InMemory()) // a scan
	if err != nil {
		t.Fatal(err)
	}
	idx, reads := openCounted(t, st)
	if reads == 0 || reads >= full.reads.Load() {
		t.Errorf("reopening read %d blobs, want fewer than a scan's %d and more than 0", reads, full.reads.Load())
	}
	if _, reads := openCounted(t, st); reads != 0 {
		t.Errorf("reopening again read %d blobs, want 0 (the files cover every ref)", reads)
	}
	requireIndexed(t, st, idx, results...)
	// A scan counts only stored frames; the files also the virtual ones
	// the writes made.
	f1, c1 := idx.Len()
	f2, c2 := mem.Len()
	if f1 < f2 || c1 != c2 {
		t.Errorf("index files locate %d frames and %d chunks, a scan %d and %d", f1, c1, f2, c2)
	}
}

// TestIndexRebuiltAfterDeletion: deleting the index directory costs one
// scan; the next Index writes the files again.
func TestIndexRebuiltAfterDeletion(t *testing.T) {
	st, results := persisted(t, newFixture(80))
	if err := os.RemoveAll(st.IndexDir()); err != nil {
		t.Fatal(err)
	}
	idx, reads := openCounted(t, st)
	if reads == 0 {
		t.Error("no scan after the index files were deleted")
	}
	requireIndexed(t, st, idx, results...)
	if _, reads := openCounted(t, st); reads != 0 {
		t.Errorf("after the rebuild a new Index read %d blobs, want 0", reads)
	}
}

// TestIndexCorruptFileRebuilt: an index file that fails its checks
// (flipped byte, truncation) is never trusted: the index is scanned again
// from the blobs. (Every damage here is found when the file is opened: the
// chunk entry lies in the first block, which holds the magic;
// TestLazyBlockCheck damages a block read later.)
func TestIndexCorruptFileRebuilt(t *testing.T) {
	flip := func(at func(size int) int) func(string) error {
		return func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[at(len(b))] ^= 0x40
			return os.WriteFile(p, b, 0o644)
		}
	}
	for _, damage := range []struct {
		name string
		fn   func(path string) error
	}{
		{"flipped footer byte", flip(func(n int) int { return n - 20 })},
		{"flipped chunk entry", flip(func(int) int { return 8 + 44*3 })},
		{"truncated", func(p string) error {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, fi.Size()-9)
		}},
		{"empty", func(p string) error { return os.Truncate(p, 0) }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			st, results := persisted(t, newFixture(80))
			openCounted(t, st) // one file per ref scanned, no scan left
			var victim string
			var size int64
			for _, f := range indexFiles(t, st) { // the largest: it holds chunks
				if fi, err := os.Stat(f); err == nil && fi.Size() > size {
					victim, size = f, fi.Size()
				}
			}
			if err := damage.fn(victim); err != nil {
				t.Fatal(err)
			}
			idx, reads := openCounted(t, st)
			if reads == 0 {
				t.Error("a corrupt index file was trusted (no scan)")
			}
			if _, err := os.Stat(victim); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("corrupt index file kept: %v", err)
			}
			requireIndexed(t, st, idx, results...)
			fresh, _ := openCounted(t, st)
			requireIndexed(t, st, fresh, results...)
		})
	}
}

// TestIndexConcurrentWriters: two Index instances on one directory (two
// processes) write at once; each adds its own files, and a third Index
// sees both images without a scan.
func TestIndexConcurrentWriters(t *testing.T) {
	fx := newFixture(100)
	st := openLocal(t)
	dir := index.WithDir(st.IndexDir())
	put(t, st, "base", fx.base, dir)
	a, b := derive(fx.base, "b", 100000), derive(fx.base, "c", 200000)
	var wg sync.WaitGroup
	results := make([]*writer.Result, 2)
	for i, files := range []map[string][]byte{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = put(t, st, []string{"a", "b"}[i], files, dir)
		}()
	}
	wg.Wait()
	openCounted(t, st) // scans the two new refs
	idx, reads := openCounted(t, st)
	if reads != 0 {
		t.Errorf("a new Index read %d blobs, want 0", reads)
	}
	requireIndexed(t, st, idx, results...)
}

// TestIndexCompaction: many writes leave a bounded number of index files
// that still cover every image.
func TestIndexCompaction(t *testing.T) {
	st := openLocal(t)
	dir := index.WithDir(st.IndexDir())
	var results []*writer.Result
	for i := 0; i < 12; i++ {
		files := map[string][]byte{"d00/f": text(int64(i), 40<<10)}
		results = append(results, put(t, st, "img"+string(rune('a'+i)), files, dir))
	}
	if n := len(indexFiles(t, st)); n > 9 {
		t.Errorf("%d index files after 12 writes, want at most 9", n)
	}
	openCounted(t, st) // scans the newest ref
	idx, reads := openCounted(t, st)
	if reads != 0 {
		t.Errorf("a new Index read %d blobs, want 0", reads)
	}
	requireIndexed(t, st, idx, results...)
}

// TestIndexAfterGC: gc rewrites the index files without the blobs it
// deletes, so no Index offers them; the image kept is still indexed.
func TestIndexAfterGC(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(80)
	st, results := persisted(t, fx)
	other := put(t, st, "other", map[string][]byte{"d00/x": text(7, 300<<10)}, index.WithDir(st.IndexDir()))
	otherFrames := frames(t, st, other)
	openCounted(t, st) // indexes "other" as a scan, not only as a write
	if err := st.DeleteRef(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.GC(ctx, st, admin.GCOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := len(indexFiles(t, st)); n != 1 {
		t.Errorf("%d index files after gc, want 1", n)
	}
	idx, reads := openCounted(t, st)
	if reads != 0 {
		t.Errorf("a new Index read %d blobs after gc, want 0", reads)
	}
	for _, f := range otherFrames {
		if _, err := st.Stat(ctx, f.Digest.Digest()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("gc kept frame %s of the deleted image: %v", f.Digest, err)
		}
		for _, c := range f.Chunks {
			if idx.HasChunk(c.ID) {
				t.Fatalf("chunk %s of a deleted frame still indexed", c.ID)
			}
		}
	}
	requireIndexed(t, st, idx, results...)
}

// TestIndexStaleEntryFallsBack: a blob deleted behind the index's back (no
// gc) is not offered by an Index opened on the files; writing the image
// again stores it again and gives the same digest.
func TestIndexStaleEntryFallsBack(t *testing.T) {
	ctx := context.Background()
	st := openLocal(t)
	dir := index.WithDir(st.IndexDir())
	files := map[string][]byte{"d00/f": text(3, 900<<10), "d00/g": text(4, 700<<10)}
	res := put(t, st, "img", files, dir)
	fs := frames(t, st, res)
	if err := st.DeleteBlob(ctx, fs[0].Digest.Digest()); err != nil {
		t.Fatal(err)
	}
	idx, _ := openCounted(t, st)
	err := idx.WithSession(ctx, func(ctx context.Context, s *index.Session) error {
		if _, ok, err := s.LookupFrame(ctx, pack.FrameKey(fs[0].Chunks)); ok || err != nil {
			t.Errorf("deleted frame offered: %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	again, err := writer.Write(ctx, st, tree(files), writer.Options{Config: plat, FrameIndex: idx})
	if err != nil {
		t.Fatal(err)
	}
	if again.Manifest.Digest != res.Manifest.Digest {
		t.Errorf("rewrite: %s, first write %s", again.Manifest.Digest, res.Manifest.Digest)
	}
	if _, err := st.Stat(ctx, fs[0].Digest.Digest()); err != nil {
		t.Errorf("deleted frame not stored again: %v", err)
	}
}

// TestVerifyIndex: Verify (oci2 check) finds nothing wrong in the index
// files of a sound store, and reports a blob deleted behind the index's back,
// a unit that lost its descriptor, and a corrupt file.
func TestVerifyIndex(t *testing.T) {
	ctx := context.Background()
	st, results := persisted(t, newFixture(120))
	openCounted(t, st) // scans the newest ref: every pack index is covered
	verify := func() []index.Mismatch {
		t.Helper()
		rep, err := admin.Check(ctx, st, admin.CheckOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ms, err := index.Verify(ctx, st.IndexDir(), st, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range rep.Problems {
			if p.Ref == "index" {
				n++
			}
		}
		if n < len(ms) { // Check also sees frames the files lost
			t.Errorf("Check reports %d index problems, Verify %d mismatches", n, len(ms))
		}
		return ms
	}
	if ms := verify(); len(ms) != 0 {
		t.Fatalf("sound store: %v", ms)
	}
	units, err := st.ListUnits(ctx)
	if err != nil || len(units) == 0 {
		t.Fatalf("units: %v, %v", units, err)
	}
	if err := st.DeleteUnit(ctx, units[0]); err != nil {
		t.Fatal(err)
	}
	ms := verify()
	if len(ms) == 0 {
		t.Error("unit without descriptor not reported")
	}
	for _, m := range ms { // once per file naming it
		if m.Blob != units[0] || !strings.Contains(m.Message, "descriptor") {
			t.Errorf("unit without descriptor: %v", m)
		}
	}
	f := frames(t, st, results[0])[0]
	if err := st.DeleteBlob(ctx, f.Digest.Digest()); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range verify() {
		found = found || (m.Blob == f.Digest.Digest() && strings.Contains(m.Message, "not in the store"))
	}
	if !found {
		t.Errorf("deleted frame blob %s not reported", f.Digest)
	}
	files := indexFiles(t, st)
	if err := os.Truncate(files[0], 100); err != nil {
		t.Fatal(err)
	}
	found = false
	for _, m := range verify() {
		found = found || strings.Contains(m.Message, "checksum")
	}
	if !found {
		t.Error("truncated index file not reported")
	}
	if _, err := os.Stat(files[0]); err != nil {
		t.Errorf("Verify removed the file it reports: %v", err)
	}
}

// TestLongLivedIndexAfterGC: an Index kept open across a gc (the daemon's,
// or `oci2 gc` run beside it) does not offer the frames the gc deleted:
// writing the image again stores their unit again, counted in the write's
// stats, and indexes its chunks again, in the long-lived Index and in the
// index files. (The gc rewrites the files without the unit; the Index still
// held the unit's entry, read from the old files, and took the unit stored
// again for one the files name: its chunks were in no file, so the frames
// were not locatable and the daemon's check after the export failed.)
func TestLongLivedIndexAfterGC(t *testing.T) {
	ctx := context.Background()
	st := openLocal(t)
	// A warm store: the image's frames are kept virtual, in a unit (of one
	// byte: a write that fills no unit stores its frames' blobs instead).
	put(t, st, "other", map[string][]byte{"d00/o": text(98, 2<<10)}, index.WithDir(st.IndexDir()))
	idx, err := index.New(ctx, st, index.WithDir(st.IndexDir()), index.WithUnitSize(1))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	files := map[string][]byte{"d00/u": []byte("unique\n")}
	write := func() *writer.Result {
		t.Helper()
		if err := idx.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		res, err := writer.Write(ctx, st, tree(files), writer.Options{Config: plat, FrameIndex: idx})
		if err != nil {
			t.Fatal(err)
		}
		desc, err := writer.WriteIndex(ctx, st, []ocispec.Descriptor{res.Manifest}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetRef(ctx, "gc", desc); err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := write()
	if first.Stats.FramesNew != 2 || first.Stats.FramesVirtual == 0 {
		t.Fatalf("first write: %+v; the test needs its 2 frames new, one at least in a unit", first.Stats)
	}
	// The blobs holding the image's chunks; gc deletes those it stored.
	var written []digest.Digest
	for _, f := range frames(t, st, first) {
		bs, ok := idx.Holders(f.Chunks)
		if !ok {
			t.Fatalf("frame %s not located after the first write", f.Digest)
		}
		for _, b := range bs {
			if !slices.Contains(written, b.Digest()) {
				written = append(written, b.Digest())
			}
		}
	}
	if err := st.DeleteRef(ctx, "gc"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.GC(ctx, st, admin.GCOptions{}); err != nil {
		t.Fatal(err)
	}
	var deleted []digest.Digest
	for _, d := range written {
		if _, err := st.Stat(ctx, d); errors.Is(err, store.ErrNotFound) {
			deleted = append(deleted, d)
		}
	}
	if len(deleted) == 0 {
		t.Fatalf("gc deleted none of %v: the test needs the write's blobs gone", written)
	}

	again := write()
	if again.Manifest.Digest != first.Manifest.Digest {
		t.Errorf("write after gc: %s, first write %s", again.Manifest.Digest, first.Manifest.Digest)
	}
	if again.Stats.FramesNew != 2 || again.Stats.StoredNew != first.Stats.StoredNew {
		t.Errorf("write after gc: %+v; want 2 new frames and %d bytes stored again, as the first write",
			again.Stats, first.Stats.StoredNew)
	}
	for _, d := range deleted {
		if _, err := st.Stat(ctx, d); err != nil {
			t.Errorf("blob %s not stored again: %v", d, err)
		}
	}
	fresh, err := index.New(ctx, st, index.WithDir(st.IndexDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	for name, x := range map[string]*index.Index{"long-lived index": idx, "index files": fresh} {
		for _, f := range frames(t, st, again) {
			bs, ok := x.Holders(f.Chunks)
			if !ok {
				t.Errorf("%s: frame %s not located", name, f.Digest)
			}
			for _, b := range bs {
				if _, err := st.Stat(ctx, b.Digest()); err != nil {
					t.Errorf("%s: frame %s held by %s: %v", name, f.Digest, b, err)
				}
			}
		}
	}
	rep, err := admin.Check(ctx, st, admin.CheckOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("check: %v %v", rep.Problems, err)
	}
}
