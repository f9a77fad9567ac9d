package index_test

import (
	"context"
	"errors"
	"testing"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/memstore"
)

// TestStaleFramesAfterExternalGC: a long-lived index (the exporter daemon
// keeps one) whose frames another process deleted neither offers them for
// reuse nor reads chunks from them; a write through it stores them again.
func TestStaleFramesAfterExternalGC(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	files := map[string][]byte{"f": pseudo(4, 900<<10), "g": []byte("small")}
	res := writeTagged(t, st, "example.com/s:1", files)
	fs := frames(t, st, res)
	if len(fs) < 3 {
		t.Fatalf("%d data frames: the test needs several", len(fs))
	}
	idx, err := index.New(ctx, st, index.WithUnits(nil)) // frames stored as blobs
	if err != nil {
		t.Fatal(err)
	}
	s := session(t, idx)
	nframes, _ := idx.Len()

	// An external gc deletes two frames: one found by LookupFrame, one by
	// ReadChunk.
	gone, read := fs[0], fs[1]
	for _, f := range []format.Frame{gone, read} {
		if err := st.DeleteBlob(ctx, f.Digest.Digest()); err != nil {
			t.Fatal(err)
		}
	}
	if f, ok, err := s.LookupFrame(ctx, pack.FrameKey(gone.Chunks)); ok || err != nil {
		t.Fatalf("deleted frame: LookupFrame = %s, %v, %v; want not found", f.Digest, ok, err)
	}
	if idx.HasChunk(gone.Chunks[0].ID) {
		t.Error("chunk of a deleted frame still indexed")
	}
	if _, err := idx.ReadChunk(ctx, read.Chunks[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("chunk of a deleted frame: ReadChunk = %v, want ErrNotFound", err)
	}
	if _, ok, _ := s.LookupFrame(ctx, pack.FrameKey(read.Chunks)); ok {
		t.Error("frame whose chunk could not be read still offered")
	}
	if n, _ := idx.Len(); n != nframes-2 {
		t.Errorf("index has %d frames after dropping 2 of %d", n, nframes)
	}
	// The frames still present are offered as before.
	if _, ok, err := s.LookupFrame(ctx, pack.FrameKey(fs[2].Chunks)); !ok || err != nil {
		t.Errorf("present frame: ok=%v err=%v", ok, err)
	}

	// Writing the image again through the stale index puts the two frames
	// back (same bytes, same digest) and reuses the others.
	again, err := writer.Write(ctx, st, image(files), writer.Options{Config: plat, FrameIndex: idx})
	if err != nil {
		t.Fatal(err)
	}
	if again.Manifest.Digest != res.Manifest.Digest {
		t.Errorf("rewrite: %s, first write %s", again.Manifest.Digest, res.Manifest.Digest)
	}
	if again.Stats.FramesNew != 2 {
		t.Errorf("rewrite made %d new frames, want the 2 deleted", again.Stats.FramesNew)
	}
	for _, f := range []format.Frame{gone, read} {
		if _, err := st.Stat(ctx, f.Digest.Digest()); err != nil {
			t.Errorf("frame %s after the rewrite: %v", f.Digest, err)
		}
		if _, ok, _ := s.LookupFrame(ctx, pack.FrameKey(f.Chunks)); !ok {
			t.Errorf("frame %s not indexed again", f.Digest)
		}
	}
	if n, _ := idx.Len(); n != nframes {
		t.Errorf("index has %d frames, want %d", n, nframes)
	}
}

// TestDroppedFrameComesBackOnRefresh: a frame dropped because its blob was
// gone is indexed again by Refresh once the blob is back (a pull, say).
func TestDroppedFrameComesBackOnRefresh(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	res := writeTagged(t, st, "example.com/r:1", map[string][]byte{"f": pseudo(6, 700<<10)})
	f := frames(t, st, res)[0]
	stored, err := st.ReadBlob(ctx, f.Digest.Digest(), 0)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := index.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	s := session(t, idx)
	if err := st.DeleteBlob(ctx, f.Digest.Digest()); err != nil {
		t.Fatal(err)
	}
	key := pack.FrameKey(f.Chunks)
	if _, ok, _ := s.LookupFrame(ctx, key); ok {
		t.Fatal("deleted frame offered")
	}
	if err := idx.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.LookupFrame(ctx, key); ok {
		t.Fatal("deleted frame offered after Refresh")
	}
	if err := st.PutBlob(ctx, f.Digest.Digest(), stored); err != nil {
		t.Fatal(err)
	}
	if err := idx.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.LookupFrame(ctx, key)
	if !ok || err != nil || got.Digest != f.Digest {
		t.Fatalf("frame back in the store: LookupFrame = %s, %v, %v", got.Digest, ok, err)
	}
	b, err := idx.ReadChunk(ctx, f.Chunks[0].ID)
	if err != nil || format.Sum(b) != f.Chunks[0].ID {
		t.Errorf("chunk of the frame back: %v", err)
	}
}

// A chunk held by two frames stays readable when one of them goes.
func TestDroppedFrameChunkInAnotherFrame(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	idx, err := index.New(ctx, st, index.WithUnits(nil)) // frames stored as blobs
	if err != nil {
		t.Fatal(err)
	}
	s := session(t, idx)
	a, b := []byte("shared chunk"), []byte("other chunk")
	put := func(chunks ...[]byte) format.Frame {
		key, f, stored := frameOf(chunks...)
		if err := s.PutFrame(ctx, key, f, stored); err != nil {
			t.Fatal(err)
		}
		return f
	}
	first := put(a)
	put(b, a)
	if err := st.DeleteBlob(ctx, first.Digest.Digest()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.LookupFrame(ctx, pack.FrameKey(first.Chunks)); ok {
		t.Fatal("deleted frame offered")
	}
	got, err := idx.ReadChunk(ctx, format.Sum(a))
	if err != nil || string(got) != string(a) {
		t.Errorf("shared chunk after its first frame went: %q, %v", got, err)
	}
}
