package daemon

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/buildkit/exporter"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/local"
)

// putImage writes a one-file image of size n and names it as the exporter
// does, exported at t.
func putImage(t *testing.T, st *local.Store, name string, n int, seed byte, at time.Time) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	data := make([]byte, n) // incompressible, distinct per seed
	rand.NewChaCha8([32]byte{seed}).Read(data)
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := writer.FromDir(ctx, dir, writer.DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := writer.Write(ctx, st, root, writer.Options{Config: ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := writer.WriteIndex(ctx, st, []ocispec.Descriptor{res.Manifest}, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx.Annotations = map[string]string{exporter.AnnotationExported: at.UTC().Format(time.RFC3339Nano)}
	if err := st.SetRef(ctx, name, idx); err != nil {
		t.Fatal(err)
	}
	return res.Manifest
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	st, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1800000000, 0)
	putImage(t, st, "docker.io/library/old:latest", 300<<10, 1, now.Add(-72*time.Hour))
	putImage(t, st, "docker.io/library/mid:latest", 300<<10, 2, now.Add(-2*time.Hour))
	putImage(t, st, "docker.io/library/new:latest", 300<<10, 3, now.Add(-time.Hour))
	// a ref the exporter did not make (oci2 import/tag): never removed
	putImage(t, st, "docker.io/library/imported:latest", 300<<10, 4, now)
	imported, _ := st.GetRef(ctx, "docker.io/library/imported:latest")
	imported.Annotations = nil
	if err := st.SetRef(ctx, "docker.io/library/imported:latest", imported); err != nil {
		t.Fatal(err)
	}

	r := &retention{state: exporter.NewState(st), keepDuration: 48 * time.Hour}
	rep, err := r.run(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if rep.removed != 1 || rep.freed < 250<<10 {
		t.Errorf("keep-duration: removed %d refs, freed %d bytes; want 1 ref and its ~300 KiB", rep.removed, rep.freed)
	}
	assertRefs(t, st, "docker.io/library/imported:latest", "docker.io/library/mid:latest", "docker.io/library/new:latest")

	// keep-bytes: the oldest exported images go first until the store fits.
	r = &retention{state: exporter.NewState(st), keepBytes: 800 << 10}
	if rep, err = r.run(ctx, now); err != nil {
		t.Fatal(err)
	}
	if rep.removed != 1 {
		t.Errorf("keep-bytes: removed %d refs, want 1", rep.removed)
	}
	assertRefs(t, st, "docker.io/library/imported:latest", "docker.io/library/new:latest")
}

// TestRetentionIndexFiles: the daemon keeps its index in the store's index
// files; the retention's gc rewrites them without the blobs it deletes, so
// neither the daemon's next index nor any other process's offers them.
func TestRetentionIndexFiles(t *testing.T) {
	ctx := context.Background()
	st, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1800000000, 0)
	old := putImage(t, st, "docker.io/library/old:latest", 300<<10, 1, now.Add(-72*time.Hour))
	putImage(t, st, "docker.io/library/new:latest", 300<<10, 2, now.Add(-time.Hour))
	state := exporter.NewState(st) // the store's index files, as the daemon's
	img, err := reader.Open(ctx, st, old)
	if err != nil {
		t.Fatal(err)
	}
	chunk := img.DataPacks[0].Index.Frames[0].Chunks[0].ID
	hasOld := func() bool {
		t.Helper()
		var has bool
		if err := state.WithIndex(ctx, func(x *index.Index) error { has = x.HasChunk(chunk); return nil }); err != nil {
			t.Fatal(err)
		}
		return has
	}
	if !hasOld() { // the first export's index scans the store into files
		t.Fatal("the old image's chunk is not indexed")
	}
	r := &retention{state: state, keepDuration: 48 * time.Hour}
	rep, err := r.run(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if rep.removed != 1 || rep.freed < 250<<10 {
		t.Fatalf("removed %d refs, freed %d bytes; want the old image", rep.removed, rep.freed)
	}
	ms, err := index.Verify(ctx, st.IndexDir(), st, nil)
	if err != nil || len(ms) != 0 {
		t.Errorf("index files after the retention's gc: %v %v", ms, err)
	}
	if hasOld() {
		t.Error("the daemon's index still offers a chunk the gc deleted")
	}
}

func assertRefs(t *testing.T, st *local.Store, want ...string) {
	t.Helper()
	refs, err := st.ListRefs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs {
		got = append(got, r.Name)
	}
	if len(got) != len(want) {
		t.Fatalf("refs %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("refs %q, want %q", got, want)
		}
	}
}
