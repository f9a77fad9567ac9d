package exporter

import (
	"context"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/admin"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/local"
)

// TestStaleRetryStats: an export whose first attempt stores new frames and
// then finds the index stale (another process's gc deleted frames it
// reused) is retried; its stats count exactly the frame blobs the store
// gained over both attempts, the first attempt's included.
func TestStaleRetryStats(t *testing.T) {
	ctx := context.Background()
	st, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := NewState(st) // the index in the store's index files, as the daemon's
	a := randBytes(1, 2<<20)
	dirA := t.TempDir()
	writeFile(t, dirA, "a.bin", a)
	if _, _, err := exportDir(ctx, s, dirA, nil, nil); err != nil {
		t.Fatal(err)
	}
	dirB := t.TempDir()
	writeFile(t, dirB, "a.bin", a)
	writeFile(t, dirB, "b.bin", randBytes(2, 1<<20))
	var attempts []writer.Stats
	var before map[digest.Digest]int64
	// Another process's gc runs just after the export refreshed its index:
	// unnamed and unleased, the first image is garbage to it, and the
	// index still offers its frames as ones this daemon stored.
	gc := func() {
		if rep, err := admin.GC(ctx, st, admin.GCOptions{}); err != nil || rep.Deleted == 0 {
			t.Fatalf("gc: %+v, %v", rep, err)
		}
		before = blobSizes(ctx, t, st)
	}
	manifests, stats, err := exportDir(ctx, s, dirB, &attempts, gc)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 2 {
		t.Fatalf("%d attempts, want 2 (the first finding the index stale)", len(attempts))
	}
	if attempts[0].FramesNew == 0 || attempts[0].StoredNew == 0 {
		t.Fatalf("first attempt stored nothing (%+v): the test needs one that stores frames, then finds the index stale", attempts[0])
	}

	after := blobSizes(ctx, t, st)
	img, err := reader.Open(ctx, st, manifests[0])
	if err != nil {
		t.Fatal(err)
	}
	// Besides frames and units, the image's own metadata is new.
	meta := map[digest.Digest]bool{img.Descriptor.Digest: true, img.Manifest.Config.Digest: true}
	for _, packs := range [][]reader.Pack{img.TreePacks, img.DataPacks} {
		for _, p := range packs {
			meta[p.IndexDescriptor.Digest] = true
		}
	}
	var blobsNew, bytesNew int64
	for d, n := range after {
		if _, old := before[d]; !old && !meta[d] {
			blobsNew++
			bytesNew += n
		}
	}
	got := stats[0].Stats
	// The write fills no unit: each new frame is one new blob.
	if got.StoredNew != bytesNew || got.FramesNew != blobsNew {
		t.Fatalf("stats: %d new frames (%d virtual), %d bytes stored; the store gained %d blobs of %d bytes (attempts %+v)",
			got.FramesNew, got.FramesVirtual, got.StoredNew, blobsNew, bytesNew, attempts)
	}
	t.Logf("attempts %+v; %d blobs, %d bytes in all", attempts, blobsNew, bytesNew)
}

// exportDir writes dir as one platform's image through s.writeRetrying, as
// Export does, and appends each attempt's stats to attempts.
// A non-nil between runs after the first attempt refreshed its index.
func exportDir(ctx context.Context, s *State, dir string, attempts *[]writer.Stats, between func()) ([]ocispec.Descriptor, []PlatformStats, error) {
	return s.writeRetrying(ctx, func(ctx context.Context, idx *index.Index) ([]ocispec.Descriptor, []PlatformStats, error) {
		if between != nil {
			between()
			between = nil
		}
		root, err := writer.FromDir(ctx, dir, writer.DirOptions{})
		if err != nil {
			return nil, nil, err
		}
		res, _, err := writeChecked(ctx, s.Store, idx, root, writer.Options{})
		if attempts != nil && res != nil {
			*attempts = append(*attempts, res.Stats)
		}
		if res == nil {
			return nil, nil, err
		}
		ps := []PlatformStats{{Platform: "linux/amd64", Stats: res.Stats}}
		if err != nil {
			return nil, ps, err
		}
		return []ocispec.Descriptor{res.Manifest}, ps, nil
	})
}

func blobSizes(ctx context.Context, t *testing.T, st store.Lister) map[digest.Digest]int64 {
	t.Helper()
	m := map[digest.Digest]int64{}
	if err := st.ListBlobs(ctx, func(i store.Info) error {
		m[i.Digest] = i.Size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return m
}
