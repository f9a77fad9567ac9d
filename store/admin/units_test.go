package admin

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/internal/imagetest"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/framesource"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/local"
	"github.com/oci2/oci2/store/memstore"
)

// text returns n bytes of seeded, compressible pseudo-text.
var text = imagetest.Text

// files is an image's regular files by name (one directory level).
type files map[string][]byte

func (fs files) tree() *writer.Node { return imagetest.Tree(fs, mtime) }

// layered returns a base image and a derived one: the derived drops every
// fifth base file and inserts a new one after each base file (so nearly
// every base frame changes), and extra holds the new files alone.
func layered(n int, seed int64) (base, derived files) {
	base, derived = files{}, files{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("d%02d/f%04d", i%6, i)
		b := text(seed+int64(i), 2<<10+i*37%(20<<10))
		base[name+"a"] = b
		if i%5 != 0 {
			derived[name+"a"] = b
		}
		derived[name+"b"] = text(seed+100000+int64(i), 1<<10+i*53%(16<<10))
	}
	return base, derived
}

func openLocal(t *testing.T) *local.Store {
	t.Helper()
	st, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// storeLocal writes fs as image name through a fresh index (as a new
// process would) and returns the manifest.
func storeLocal(t *testing.T, st store.LocalStore, name string, fs files) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	idx, err := index.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := imagetest.Tag(t, st, name, fs.tree(), writer.Options{FrameIndex: idx})
	return res.Manifest
}

// readAll reads every regular file of the manifest through a fresh
// framesource and compares it with want.
func readAll(t *testing.T, st store.LocalStore, m ocispec.Descriptor, want files) {
	t.Helper()
	ctx := context.Background()
	img, err := reader.Open(ctx, st, m)
	if err != nil {
		t.Fatal(err)
	}
	cr := reader.NewChunkReader(img, framesource.New(st, nil))
	got := files{}
	var cur string
	err = reader.Walk(ctx, cr, img.Root, reader.Limits{}, func(p string, e *format.Entry) error {
		if e.Type == format.TypeDir {
			cur = p
			return nil
		}
		got[cur+"/"+e.Name] = readertest.Content(t, cr, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d files, want %d", len(got), len(want))
	}
	for p, b := range want {
		if !bytes.Equal(got[p], b) {
			t.Fatalf("%s: %d bytes differ from the %d written", p, len(got[p]), len(b))
		}
	}
}

func checkData(t *testing.T, st store.LocalStore) *Report {
	t.Helper()
	rep, err := Check(context.Background(), st, CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("check: %v", rep.Problems)
	}
	return rep
}

func storeBytes(t *testing.T, st store.Lister) (n int64, blobs map[digest.Digest]int64) {
	t.Helper()
	blobs = map[digest.Digest]int64{}
	err := st.ListBlobs(context.Background(), func(i store.Info) error {
		n += i.Size
		blobs[i.Digest] = i.Size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, blobs
}

// TestGCKeepsDerivedAfterBaseRemoved: the derived image's virtual frames
// rely on the base's frames; removing the base and collecting keeps them
// readable (the frames are pinned as units), frees what only the base used,
// and check --read-data regenerates every virtual frame.
// It runs on the local store and on memstore, which has the same roles.
func TestGCKeepsDerivedAfterBaseRemoved(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) store.LocalStore
	}{
		{"local", func(t *testing.T) store.LocalStore { return openLocal(t) }},
		{"memstore", func(*testing.T) store.LocalStore { return memstore.New() }},
	} {
		t.Run(tc.name, func(t *testing.T) { testGCKeepsDerived(t, tc.open(t)) })
	}
}

func testGCKeepsDerived(t *testing.T, st store.LocalStore) {
	ctx := context.Background()
	base, derived := layered(300, 1)
	storeLocal(t, st, "base", base)
	m := storeLocal(t, st, "derived", derived)
	rep := checkData(t, st)
	if rep.VirtualFrames == 0 {
		t.Fatal("no virtual frame")
	}
	du, err := DU(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	total, _ := storeBytes(t, st)
	if du.StoredBytes != total || du.UnreachableBytes != 0 || du.ReachableBytes != total {
		t.Errorf("du: %+v, blobs hold %d bytes", du, total)
	}
	for _, iu := range du.Images {
		if iu.StoredBytes <= 0 || iu.StoredBytes > total || iu.SharedBytes <= 0 {
			t.Errorf("du of %s: %+v", iu.Name, iu)
		}
	}

	if err := st.DeleteRef(ctx, "base"); err != nil {
		t.Fatal(err)
	}
	dry, err := GC(ctx, st, GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := storeBytes(t, st); after != total {
		t.Fatal("dry run deleted blobs")
	}
	gc, err := GC(ctx, st, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gc: %+v", gc)
	if gc.Deleted == 0 || gc.Units == 0 || dry.Deleted != gc.Deleted || dry.Compacted != gc.Compacted {
		t.Errorf("gc %+v, dry run %+v", gc, dry)
	}
	after, _ := storeBytes(t, st)
	if after != total-gc.DeletedBytes+gc.CompactedNewBytes {
		t.Errorf("store %d -> %d bytes, gc says %d deleted, %d written", total, after, gc.DeletedBytes, gc.CompactedNewBytes)
	}
	checkData(t, st)
	readAll(t, st, m, derived)

	// A second gc finds nothing more to do.
	again, err := GC(ctx, st, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Deleted != 0 || again.Compacted != 0 || again.UnitsDeleted != 0 {
		t.Errorf("second gc: %+v", again)
	}
}

// TestGCCompactsSparseUnits: units whose chunks live images use only in
// small part are rewritten, the live chunks into new units, the rest freed.
func TestGCCompactsSparseUnits(t *testing.T) {
	ctx := context.Background()
	st := openLocal(t)
	base := files{}
	for i := 0; i < 40; i++ {
		base[fmt.Sprintf("d00/b%03d", i)] = text(int64(i), 8<<10)
	}
	big, small := files{}, files{}
	for name, b := range base {
		big[name], small[name] = b, b
	}
	for i := 0; i < 600; i++ { // new files: in units of the second image
		name := fmt.Sprintf("d01/n%04d", i)
		big[name] = text(int64(5000+i), 6<<10+i%4096)
		if i%5 == 0 {
			small[name] = big[name]
		}
	}
	storeLocal(t, st, "base", base)
	storeLocal(t, st, "big", big)
	m := storeLocal(t, st, "small", small) // its new chunks are all in big's units
	if err := st.DeleteRef(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	before, _ := storeBytes(t, st)
	gc, err := GC(ctx, st, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := storeBytes(t, st)
	t.Logf("gc: %+v; store %d -> %d bytes", gc, before, after)
	if gc.Compacted == 0 || gc.CompactedNew == 0 || after >= before*2/3 {
		t.Errorf("sparse units not compacted: %+v, %d -> %d bytes", gc, before, after)
	}
	checkData(t, st)
	readAll(t, st, m, small)

	// Without compaction the sparse units would have stayed.
	st2 := openLocal(t)
	storeLocal(t, st2, "base", base)
	storeLocal(t, st2, "big", big)
	storeLocal(t, st2, "small", small)
	st2.DeleteRef(ctx, "big")
	gc2, err := GC(ctx, st2, GCOptions{NoCompact: true})
	if err != nil {
		t.Fatal(err)
	}
	kept, _ := storeBytes(t, st2)
	if gc2.Compacted != 0 || kept <= after {
		t.Errorf("NoCompact: %+v, %d bytes kept (compacted: %d)", gc2, kept, after)
	}
	checkData(t, st2)
}

// TestGCRefusesUnheldChunks: a virtual frame whose chunks no blob holds
// (a unit deleted behind the store's back) stops gc before it deletes
// anything, and check names the frame.
func TestGCRefusesUnheldChunks(t *testing.T) {
	ctx := context.Background()
	st := openLocal(t)
	base, derived := layered(120, 2)
	storeLocal(t, st, "base", base)
	storeLocal(t, st, "derived", derived)
	units, err := st.ListUnits(ctx)
	if err != nil || len(units) == 0 {
		t.Fatalf("units: %v %v", units, err)
	}
	var unit digest.Digest
	for _, d := range units { // a unit that is not a pinned frame of base
		b, _ := st.ReadUnit(ctx, d)
		f, _ := index.DecodeUnit(d, b)
		if f.RawSize() > 64<<10 {
			unit = d
		}
	}
	if err := st.DeleteBlob(ctx, unit); err != nil {
		t.Fatal(err)
	}
	before, _ := storeBytes(t, st)
	junk := []byte("junk")
	st.PutBlob(ctx, digest.FromBytes(junk), junk)
	if _, err := GC(ctx, st, GCOptions{}); err == nil {
		t.Fatal("gc went ahead")
	}
	if after, _ := storeBytes(t, st); after != before+int64(len(junk)) {
		t.Errorf("gc deleted blobs before failing")
	}
	rep, err := Check(ctx, st, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatal("check found nothing")
	}
	t.Logf("check: %v", rep.Problems[0])
}
