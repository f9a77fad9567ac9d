package index_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/internal/imagetest"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/local"
	"github.com/oci2/oci2/store/memstore"
)

// vocab is a fixed list of pseudo-words: text made of them compresses
// about like real files do.
var vocab = func() []string {
	r := rand.New(rand.NewSource(0))
	out := make([]string, 3000)
	for i := range out {
		b := make([]byte, 2+r.Intn(9))
		for j := range b {
			b[j] = byte('a' + r.Intn(26))
		}
		out[i] = string(b)
	}
	return out
}()

// text returns n bytes of seeded pseudo-text.
func text(seed int64, n int) []byte {
	r := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(vocab[r.Intn(len(vocab))])
		b.WriteByte(" \n"[r.Intn(8)/7])
	}
	return b.Bytes()[:n]
}

// fixture is a base tree and a derived one that inserts a new file after
// every base file (as installing packages does: new files land between
// existing ones almost everywhere), so nearly every base frame changes.
type fixture struct {
	base, derived map[string][]byte
	newBytes      []byte // the new files' bytes, concatenated
}

func newFixture(files int) *fixture {
	f := &fixture{base: map[string][]byte{}, derived: map[string][]byte{}}
	for i := 0; i < files; i++ {
		name := fmt.Sprintf("d%02d/f%04d", i%8, i)
		b := text(int64(i), 2<<10+i*37%(22<<10))
		f.base[name+"a"] = b
		f.derived[name+"a"] = b
		n := text(int64(100000+i), 1<<10+i*53%(20<<10))
		f.derived[name+"b"] = n
		f.newBytes = append(f.newBytes, n...)
	}
	return f
}

// tree builds a writer tree of slash paths (one directory level).
func tree(files map[string][]byte) *writer.Node { return imagetest.Tree(files, 0) }

func openLocal(t *testing.T) *local.Store {
	t.Helper()
	st, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// put writes files as an image named name with a fresh index (a new
// process) and returns the result.
func put(t *testing.T, st index.Store, name string, files map[string][]byte, opts ...index.Option) *writer.Result {
	t.Helper()
	ctx := context.Background()
	idx, err := index.New(ctx, st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := imagetest.Tag(t, st, name, tree(files), writer.Options{FrameIndex: idx})
	return res
}

func blobBytes(t *testing.T, st store.Lister) int64 {
	t.Helper()
	var n int64
	if err := st.ListBlobs(context.Background(), func(i store.Info) error {
		n += i.Size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDerivedStoresOnlyNewChunks: a derived image stored after its base
// writes about the compressed size of its new chunks, where storing every
// changed canonical frame writes much more.
func TestDerivedStoresOnlyNewChunks(t *testing.T) {
	fx := newFixture(400)
	_, z := pack.EncodeFrame(fx.newBytes)
	newZ := int64(len(z))
	for _, tc := range []struct {
		name     string
		opts     []index.Option
		min, max float64 // bounds on new stored bytes / newZ
	}{
		{"units", nil, 0, 1.2},
		{"virtual-only", []index.Option{index.WithWarmUnits(false)}, 0, 1.2},
		{"no-units", []index.Option{index.WithUnits(nil)}, 1.5, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openLocal(t)
			put(t, st, "base", fx.base, tc.opts...)
			before := blobBytes(t, st)
			res := put(t, st, "derived", fx.derived, tc.opts...)
			written := blobBytes(t, st) - before
			ratio := float64(written) / float64(newZ)
			t.Logf("new files %d bytes, %d compressed; derived wrote %d (%.2fx, stats %d), %d of %d new frames virtual",
				len(fx.newBytes), newZ, written, ratio, res.Stats.StoredNew, res.Stats.FramesVirtual, res.Stats.FramesNew)
			if ratio < tc.min || ratio > tc.max {
				t.Errorf("derived image wrote %.2fx the compressed new chunks, want [%v, %v]", ratio, tc.min, tc.max)
			}
			// The rest is metadata: manifest, config, pack indexes.
			if meta := written - res.Stats.StoredNew; meta < 0 || meta > 64<<10 {
				t.Errorf("stats say %d new bytes, the store grew by %d", res.Stats.StoredNew, written)
			}
		})
	}
}

// TestVirtualFramesAreCanonical: an image with virtual frames has the
// manifest digest of the same tree written alone, every virtual frame
// regenerates to its digest, and its packs rebuild to their digests.
func TestVirtualFramesAreCanonical(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(200)
	st := openLocal(t)
	put(t, st, "base", fx.base)
	res := put(t, st, "derived", fx.derived)
	alone := put(t, memstore.New(), "derived", fx.derived)
	if res.Manifest.Digest != alone.Manifest.Digest {
		t.Fatalf("manifest %s, written alone %s", res.Manifest.Digest, alone.Manifest.Digest)
	}
	if res.Stats.FramesVirtual == 0 {
		t.Fatal("no virtual frame")
	}

	idx, err := index.New(ctx, st) // a new process
	if err != nil {
		t.Fatal(err)
	}
	virtual := 0
	for _, pi := range packsOf(t, st, res.Manifest.Digest) {
		for i := range pi.idx.Frames {
			f := &pi.idx.Frames[i]
			if _, err := st.Stat(ctx, f.Digest.Digest()); err == nil {
				continue
			}
			virtual++
			if !idx.Locatable(f) {
				t.Fatalf("virtual frame %s: chunks not all held", f.Digest)
			}
			b, err := idx.StoredFrame(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if format.Sum(b) != f.Digest || uint64(len(b)) != f.StoredSize {
				t.Fatalf("frame %s regenerated to %s", f.Digest, format.Sum(b))
			}
		}
		h := sha256.New()
		if err := pack.WritePack(ctx, h, pi.idx, idx.StoredFrame); err != nil {
			t.Fatal(err)
		}
		if got := digest.NewDigest(digest.SHA256, h); got != pi.pack {
			t.Errorf("pack %s rebuilt as %s", pi.pack, got)
		}
	}
	if virtual == 0 {
		t.Fatal("every frame has a blob")
	}

	// Writing it again compresses and stores nothing: virtual frames are
	// found by key.
	before := blobBytes(t, st)
	again := put(t, st, "again", fx.derived)
	if again.Stats.FramesNew != 0 || blobBytes(t, st) != before {
		t.Errorf("second write: %d new frames, %d new bytes", again.Stats.FramesNew, blobBytes(t, st)-before)
	}
}

type packOf struct {
	pack digest.Digest
	idx  *format.PackIndex
}

// packsOf returns the packs of a manifest with their decoded indexes.
func packsOf(t *testing.T, st store.Reader, manifest digest.Digest) []packOf {
	t.Helper()
	ctx := context.Background()
	var m ocispec.Manifest
	b, err := st.ReadBlob(ctx, manifest, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []packOf
	for i := 0; i+1 < len(m.Layers); i += 2 {
		b, err := st.ReadBlob(ctx, m.Layers[i].Digest, 0)
		if err != nil {
			t.Fatal(err)
		}
		pi, err := format.DecodePackIndex(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, packOf{pack: m.Layers[i+1].Digest, idx: pi})
	}
	return out
}

// TestForeignFrameNotVirtual: a frame whose stored bytes the pinned encoder
// would not produce is stored as its blob even when the store holds its
// chunks, so a pack never needs a frame the store cannot regenerate.
func TestForeignFrameNotVirtual(t *testing.T) {
	ctx := context.Background()
	st := openLocal(t)
	data := text(7, 12<<10) // one chunk
	put(t, st, "a", map[string][]byte{"d00/f": data})
	idx, err := index.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	s := session(t, idx)
	id := format.Sum(data)
	if !idx.HasChunk(id) {
		t.Fatal("chunk not indexed")
	}
	// Raw encoding of compressible bytes: valid, but not what EncodeFrame
	// gives.
	f := format.Frame{Encoding: format.EncodingRaw, StoredSize: uint64(len(data)), Digest: id,
		Chunks: []format.ChunkRef{{ID: id, Size: uint32(len(data))}}}
	if err := s.PutForeignFrame(ctx, pack.FrameKey(f.Chunks), f, data); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(ctx, f.Digest.Digest()); err != nil {
		t.Errorf("foreign frame not stored: %v", err)
	}
}

// TestFlushBeforeUse: chunks of virtual frames are readable while buffered,
// and Flush stores them in units the next index finds.
func TestFlushBeforeUse(t *testing.T) {
	ctx := context.Background()
	st := openLocal(t)
	a := text(1, 10<<10)
	put(t, st, "a", map[string][]byte{"d00/a": a})
	idx, err := index.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	s := session(t, idx)
	b := text(2, 12<<10)
	raw := append(append([]byte{}, a...), b...)
	enc, stored := pack.EncodeFrame(raw)
	f := format.Frame{Encoding: enc, StoredSize: uint64(len(stored)), Digest: format.Sum(stored),
		Chunks: []format.ChunkRef{{ID: format.Sum(a), Size: uint32(len(a))}, {ID: format.Sum(b), Size: uint32(len(b))}}}
	key := pack.FrameKey(f.Chunks)
	if err := s.PutFrame(ctx, key, f, stored); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(ctx, f.Digest.Digest()); err == nil {
		t.Fatal("frame stored as a blob")
	}
	if got, err := s.ReadChunk(ctx, format.Sum(b)); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("buffered chunk: %v", err)
	}
	if got, _, err := s.LookupFrame(ctx, key); err != nil || got.Digest != f.Digest {
		t.Fatalf("virtual frame not found: %v", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	units, err := st.ListUnits(ctx)
	if err != nil || len(units) != 2 { // the new unit, and a's frame pinned
		t.Fatalf("units %v, %v", units, err)
	}
	fresh, err := index.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fresh.StoredFrame(ctx, &f)
	if err != nil || !bytes.Equal(got, stored) {
		t.Fatalf("regenerated frame: %v", err)
	}
}
