package index_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/internal/imagetest"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/memstore"
)

// pseudo returns n reproducible, poorly compressible bytes.
var pseudo = imagetest.Pseudo

func image(files map[string][]byte) *writer.Node {
	root := imagetest.Dir("", 0)
	for name, b := range files {
		root.Children = append(root.Children, imagetest.File(name, 0, b))
	}
	return root
}

var plat = imagetest.Platform

// writeTagged writes an image with its own index (so the store's index is
// not shared) and tags it.
func writeTagged(t *testing.T, st *memstore.Store, name string, files map[string][]byte) *writer.Result {
	t.Helper()
	res, _ := imagetest.Tag(t, st, name, image(files), writer.Options{})
	return res
}

// frames returns the data frames of an image, from its manifest.
func frames(t *testing.T, st store.Reader, res *writer.Result) []format.Frame {
	t.Helper()
	ctx := context.Background()
	var m struct{ Layers []ocispec.Descriptor }
	b, _ := st.ReadBlob(ctx, res.Manifest.Digest, 0)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []format.Frame
	for _, l := range m.Layers {
		if l.MediaType != format.MediaTypePackIndex {
			continue
		}
		b, err := st.ReadBlob(ctx, l.Digest, 0)
		if err != nil {
			t.Fatal(err)
		}
		pi, err := format.DecodePackIndex(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pi.Frames...)
	}
	return out
}

func TestScan(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	data := pseudo(1, 900<<10)
	res := writeTagged(t, st, "example.com/a:1", map[string][]byte{"f": data, "g": []byte("small")})

	idx, err := index.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	s := session(t, idx)
	fs := frames(t, st, res)
	if n, _ := idx.Len(); n != len(fs) || n < 3 {
		t.Fatalf("index has %d frames, image %d", n, len(fs))
	}
	for _, f := range fs {
		got, ok, err := s.LookupFrame(ctx, pack.FrameKey(f.Chunks))
		if err != nil || !ok || got.Digest != f.Digest {
			t.Errorf("frame %s: ok=%v err=%v", f.Digest, ok, err)
		}
	}
	// Every chunk reads back; together they are the files.
	var all []byte
	for _, f := range fs {
		for _, c := range f.Chunks {
			b, err := idx.ReadChunk(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if format.Sum(b) != c.ID {
				t.Fatalf("chunk %s: wrong bytes", c.ID)
			}
			all = append(all, b...)
		}
	}
	if !bytes.Contains(all, data) && !bytes.Contains(all, []byte("small")) {
		t.Error("chunks do not hold the files")
	}
	if _, err := idx.ReadChunk(ctx, format.Sum([]byte("nope"))); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown chunk: %v", err)
	}
}

func TestRefreshAndMissingFrames(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	idx, err := index.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	s := session(t, idx)
	res := writeTagged(t, st, "example.com/b:1", map[string][]byte{"f": pseudo(2, 600<<10)})
	fs := frames(t, st, res)
	if n, _ := idx.Len(); n != 0 {
		t.Fatalf("stale index sees %d frames", n)
	}
	// A frame deleted from the store is not offered for reuse.
	if err := st.DeleteBlob(ctx, fs[0].Digest.Digest()); err != nil {
		t.Fatal(err)
	}
	if err := idx.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.LookupFrame(ctx, pack.FrameKey(fs[0].Chunks)); ok {
		t.Error("missing frame indexed")
	}
	if _, ok, _ := s.LookupFrame(ctx, pack.FrameKey(fs[1].Chunks)); !ok {
		t.Error("frame of a new ref not indexed after Refresh")
	}
	// It comes back when the blob does (a later pull, say).
	raw := make([]byte, 0)
	for _, c := range fs[0].Chunks {
		b, err := readFromOther(t, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	enc, stored := pack.EncodeFrame(raw)
	if enc != fs[0].Encoding || format.Sum(stored) != fs[0].Digest {
		t.Fatal("re-encoded frame differs")
	}
	if err := st.PutBlob(ctx, fs[0].Digest.Digest(), stored); err != nil {
		t.Fatal(err)
	}
	if err := idx.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.LookupFrame(ctx, pack.FrameKey(fs[0].Chunks)); !ok {
		t.Error("frame back in the store not indexed")
	}
	// Pack digests are known from the manifest.
	var m struct{ Layers []ocispec.Descriptor }
	b, _ := st.ReadBlob(ctx, res.Manifest.Digest, 0)
	json.Unmarshal(b, &m)
	if d, ok := idx.PackDigest(m.Layers[0].Digest); !ok || d != m.Layers[1].Digest {
		t.Errorf("pack digest of %s: %s %v", m.Layers[0].Digest, d, ok)
	}
}

// readFromOther writes the same image into a scratch store and reads a
// chunk from there.
func readFromOther(t *testing.T, id format.ChunkID) ([]byte, error) {
	ctx := context.Background()
	st := memstore.New()
	idx, err := index.New(ctx, st)
	if err != nil {
		return nil, err
	}
	if _, err := writer.Write(ctx, st, image(map[string][]byte{"f": pseudo(2, 600<<10)}),
		writer.Options{Config: plat, FrameIndex: idx}); err != nil {
		return nil, err
	}
	return idx.ReadChunk(ctx, id)
}

func TestPutFrame(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	idx, err := index.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	s := session(t, idx)
	a, b := []byte("chunk a"), []byte("chunk b!")
	raw := append(append([]byte{}, a...), b...)
	enc, stored := pack.EncodeFrame(raw)
	f := format.Frame{Encoding: enc, StoredSize: uint64(len(stored)), Digest: format.Sum(stored),
		Chunks: []format.ChunkRef{{ID: format.Sum(a), Size: uint32(len(a))}, {ID: format.Sum(b), Size: uint32(len(b))}}}
	key := pack.FrameKey(f.Chunks)
	if err := s.PutFrame(ctx, key, f, stored); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(ctx, f.Digest.Digest()); err != nil {
		t.Errorf("frame blob: %v", err)
	}
	got, err := idx.ReadChunk(ctx, format.Sum(b))
	if err != nil || !bytes.Equal(got, b) {
		t.Errorf("ReadChunk = %q, %v", got, err)
	}
	bad := f
	bad.Digest = format.Sum([]byte("other"))
	if err := s.PutFrame(ctx, format.Sum([]byte("k")), bad, stored); !errors.Is(err, store.ErrDigestMismatch) {
		t.Errorf("wrong digest: %v", err)
	}
}

// TestConcurrentUse runs lookups, reads, puts and refreshes at once (for
// the race detector).
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	res := writeTagged(t, st, "example.com/c:1", map[string][]byte{"f": pseudo(3, 2<<20)})
	fs := frames(t, st, res)
	idx, err := index.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	s := session(t, idx)
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 50; i++ {
				f := fs[(g+i)%len(fs)]
				if _, ok, _ := s.LookupFrame(ctx, pack.FrameKey(f.Chunks)); !ok {
					done <- errors.New("frame not found")
					return
				}
				if _, err := idx.ReadChunk(ctx, f.Chunks[0].ID); err != nil {
					done <- err
					return
				}
				if g == 0 && i%10 == 0 {
					if err := idx.Refresh(ctx); err != nil {
						done <- err
						return
					}
				}
				if g == 1 {
					b := pseudo(byte(i), 1000+i)
					enc, stored := pack.EncodeFrame(b)
					nf := format.Frame{Encoding: enc, StoredSize: uint64(len(stored)), Digest: format.Sum(stored),
						Chunks: []format.ChunkRef{{ID: format.Sum(b), Size: uint32(len(b))}}}
					if err := s.PutFrame(ctx, pack.FrameKey(nf.Chunks), nf, stored); err != nil {
						done <- err
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// session opens a session of idx that ends (flushed) when the test does.
func session(t *testing.T, idx *index.Index) *index.Session {
	t.Helper()
	ready := make(chan *index.Session)
	end, done := make(chan struct{}), make(chan error)
	go func() {
		done <- idx.WithSession(context.Background(), func(_ context.Context, s *index.Session) error {
			ready <- s
			<-end
			return nil
		})
	}()
	s := <-ready
	t.Cleanup(func() {
		close(end)
		if err := <-done; err != nil {
			t.Errorf("session: %v", err)
		}
	})
	return s
}
