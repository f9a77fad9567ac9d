package local

import (
	"context"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fsynced records the paths fsynced while the test runs.
func fsynced(t *testing.T) func() map[string]bool {
	var mu sync.Mutex
	seen := map[string]bool{}
	onFsync = func(p string) {
		mu.Lock()
		seen[p] = true
		mu.Unlock()
	}
	t.Cleanup(func() { onFsync = func(string) {} })
	return func() map[string]bool {
		mu.Lock()
		defer mu.Unlock()
		out := seen
		seen = map[string]bool{}
		return out
	}
}

// TestSetRefSyncsBlobsFoundStored: blobs another process wrote and never
// synced (it was killed) are made durable by the SetRef of a process that
// relies on them: when its write finds them stored, when it keeps them,
// and when the ref names one directly.
func TestSetRefSyncsBlobsFoundStored(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	killed, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	blob := func(s string) ([]byte, digest.Digest) { return []byte(s), digest.FromString(s) }
	existing, dExisting := blob("frame written by a killed process")
	unit, dUnit := blob("unit written by a killed process")
	root, dRoot := blob(`{"schemaVersion":2}`)
	for _, b := range [][]byte{existing, unit, root} {
		if err := killed.PutBlob(ctx, digest.FromBytes(b), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := killed.PutUnit(ctx, dUnit, []byte("descriptor")); err != nil {
		t.Fatal(err)
	}
	// killed never syncs.

	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	synced := fsynced(t)
	if err := st.PutBlob(ctx, dExisting, existing); err != nil {
		t.Fatal(err)
	}
	if err := st.Keep(ctx, dUnit); err != nil {
		t.Fatal(err)
	}
	if err := st.SetRef(ctx, "example.com/x:1", ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest, Digest: dRoot, Size: int64(len(root))}); err != nil {
		t.Fatal(err)
	}
	got := synced()
	for _, p := range []string{st.blobPath(dExisting), st.blobPath(dUnit), st.unitPath(dUnit), st.blobPath(dRoot)} {
		if !got[p] {
			t.Errorf("SetRef did not fsync %s", p)
		}
	}
	// Once durable, they are not synced again.
	if err := st.SetRef(ctx, "example.com/y:1", ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest, Digest: dRoot, Size: int64(len(root))}); err != nil {
		t.Fatal(err)
	}
	if got := synced(); got[st.blobPath(dExisting)] || got[st.unitPath(dUnit)] {
		t.Errorf("second SetRef synced again: %v", got)
	}
	if err := st.Keep(ctx, digest.FromString("missing")); err == nil {
		t.Error("Keep of a missing blob succeeded")
	}
}
