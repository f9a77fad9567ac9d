package index_test

import (
	"context"
	"fmt"
	"math/rand"
	"testing"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/store/index"
)

// smallFiles returns n files of 8 KiB, a third of them random.
func smallFiles(seed int64, n int) map[string][]byte {
	r := rand.New(rand.NewSource(seed))
	files := map[string][]byte{}
	for i := 0; i < n; i++ {
		b := text(seed*1000+int64(i), 8<<10)
		if i%3 == 0 {
			r.Read(b)
		}
		files[fmt.Sprintf("d%02d/f%04d", i%8, i)] = b
	}
	return files
}

// TestSmallWarmWriteStoresFrames: a write into a warm store whose new
// chunks do not fill a unit stores its new frames' blobs, as an empty
// store does (no unit, no second compression); one that fills units keeps
// them virtual.
func TestSmallWarmWriteStoresFrames(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		opts    []index.Option
		virtual bool
	}{
		{"small", nil, false},
		{"fills-units", []index.Option{index.WithUnitSize(64 << 10)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openLocal(t)
			put(t, st, "base", smallFiles(1, 20), tc.opts...)
			before, err := st.ListUnits(ctx)
			if err != nil {
				t.Fatal(err)
			}
			res := put(t, st, "small", smallFiles(2, 200), tc.opts...)
			after, err := st.ListUnits(ctx)
			if err != nil {
				t.Fatal(err)
			}
			stored, virtual := 0, 0
			for _, pi := range packsOf(t, st, res.Manifest.Digest) {
				for _, f := range pi.idx.Frames {
					if _, err := st.Stat(ctx, f.Digest.Digest()); err == nil {
						stored++
					} else {
						virtual++
					}
				}
			}
			t.Logf("%d frames stored, %d virtual (stats %d of %d new); units %d -> %d",
				stored, virtual, res.Stats.FramesVirtual, res.Stats.FramesNew, len(before), len(after))
			if tc.virtual {
				if virtual == 0 || len(after) == len(before) || res.Stats.FramesVirtual == 0 {
					t.Errorf("a write filling units kept no frame virtual")
				}
				return
			}
			if virtual != 0 || res.Stats.FramesVirtual != 0 || len(after) != len(before) {
				t.Errorf("small write: %d frames virtual (stats %d), %d new units; want 0",
					virtual, res.Stats.FramesVirtual, len(after)-len(before))
			}
		})
	}
}

// frameOf makes the frame of raw chunks as a Packer does.
func frameOf(chunks ...[]byte) (format.ChunkID, format.Frame, []byte) {
	var raw []byte
	var refs []format.ChunkRef
	for _, c := range chunks {
		raw = append(raw, c...)
		refs = append(refs, format.ChunkRef{ID: format.Sum(c), Size: uint32(len(c))})
	}
	enc, stored := pack.EncodeFrame(raw)
	return pack.FrameKey(refs), format.Frame{Encoding: enc, StoredSize: uint64(len(stored)), Digest: format.Sum(stored), Chunks: refs}, stored
}

// TestDirectFrameReliedOn: in a small warm write, a frame of new chunks
// that another frame of the write relies on stays virtual (its chunks go
// into a unit, where the other frame finds them), while a frame nothing
// relies on gets its blob; every frame regenerates in a new process.
func TestDirectFrameReliedOn(t *testing.T) {
	ctx := context.Background()
	st := openLocal(t)
	put(t, st, "base", map[string][]byte{"d00/a": text(1, 10<<10)})
	idx, err := index.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	a1, a2, b1, c1 := text(2, 12<<10), text(3, 12<<10), text(4, 4<<10), text(5, 12<<10)
	var frames []format.Frame
	err = idx.WithSession(ctx, func(ctx context.Context, s *index.Session) error {
		for _, chunks := range [][][]byte{{a1, a2}, {a2, b1}, {c1}} {
			key, f, stored := frameOf(chunks...)
			if err := s.PutFrame(ctx, key, f, stored); err != nil {
				return err
			}
			frames = append(frames, f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{false, false, true} {
		_, err := st.Stat(ctx, frames[i].Digest.Digest())
		if got := err == nil; got != want {
			t.Errorf("frame %d: blob stored %v, want %v", i, got, want)
		}
	}
	units, err := st.ListUnits(ctx)
	if err != nil || len(units) != 1 { // a1, a2 and b1
		t.Errorf("units %v, %v; want one", units, err)
	}
	fresh, err := index.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		got, err := fresh.StoredFrame(ctx, &frames[i])
		if err != nil || format.Sum(got) != frames[i].Digest {
			t.Fatalf("frame %d does not regenerate: %v", i, err)
		}
	}
}
