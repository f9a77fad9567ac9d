package reader_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	rt "github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/store"
)

func TestChunkReader(t *testing.T) {
	s := rt.Encode(sampleTree())
	for _, enc := range []format.Encoding{format.EncodingRaw, format.EncodingZstd} {
		st, desc := build(t, rt.Image{Streams: s, Encoding: enc, ChunksPerFrame: 3, FramesPerPack: 2})
		img, err := reader.Open(t.Context(), st, desc)
		if err != nil {
			t.Fatal(err)
		}
		for name, src := range map[string]reader.FrameSource{
			"local": reader.LocalFrames(st), "ranges": reader.PackRanges(st),
		} {
			cr := reader.NewChunkReader(img, src)
			all := append(append([][]byte(nil), s.Trees...), s.Data...)
			var wg sync.WaitGroup
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range all {
						c := all[(i+w*7)%len(all)]
						got, err := cr.ReadChunk(t.Context(), format.Sum(c))
						if err != nil {
							t.Errorf("%s/%d: %v", name, enc, err)
							return
						}
						if !bytes.Equal(got, c) {
							t.Errorf("%s/%d: chunk %s: wrong bytes", name, enc, format.Sum(c))
						}
					}
				}()
			}
			wg.Wait()
			tr, err := cr.Tree(t.Context(), s.Root)
			if err != nil || len(tr.Entries) != 1 || tr.Entries[0].Name != "rootfs" {
				t.Errorf("%s: root wrapper %+v, %v", name, tr, err)
			}
		}
	}
}

func TestChunkReaderHostile(t *testing.T) {
	content := bytes.Repeat(append([]byte("compressible "), randBytes(7, 100)...), 500)
	root := rt.Dir("", 0o755, rt.File("f", 0o644, content))
	s := rt.Encode(root)
	id := format.Sum(content)
	other := format.Sum([]byte("other"))
	bomb := rt.EncodeZstd(make([]byte, 64<<20))
	bomb2 := rt.EncodeZstdStream(make([]byte, 64<<20))
	if len(bomb) >= len(content) {
		t.Fatalf("bomb of %d bytes is not smaller than the frame", len(bomb))
	}
	tests := []struct {
		name   string
		enc    format.Encoding
		edit   func(f *format.Frame, stored []byte) []byte
		ranges bool           // read through PackRanges (else local frames)
		read   format.ChunkID // default id
		target error
		subs   []string
	}{
		{name: "frame digest mismatch local", edit: func(f *format.Frame, b []byte) []byte {
			return flip(b)
		}, target: store.ErrDigestMismatch},
		{name: "frame digest mismatch ranges", ranges: true, edit: func(f *format.Frame, b []byte) []byte {
			return flip(b)
		}, target: store.ErrDigestMismatch, subs: []string{"frame sha256:"}},
		{name: "chunk digest mismatch", read: other, edit: func(f *format.Frame, b []byte) []byte {
			f.Chunks[0].ID = other
			return b
		}, target: store.ErrDigestMismatch, subs: []string{"chunk " + other.String(), "hash to " + id.String()}},
		{name: "truncated zstd frame", enc: format.EncodingZstd, edit: func(f *format.Frame, b []byte) []byte {
			b = b[:len(b)/2]
			f.StoredSize, f.Digest = uint64(len(b)), format.Sum(b)
			return b
		}, target: format.ErrInvalid, subs: []string{"frame sha256:"}},
		{name: "truncated zstd frame ranges", ranges: true, enc: format.EncodingZstd, edit: func(f *format.Frame, b []byte) []byte {
			b = b[:len(b)/2]
			f.StoredSize, f.Digest = uint64(len(b)), format.Sum(b)
			return b
		}, target: format.ErrInvalid, subs: []string{"frame sha256:"}},
		{name: "zstd bomb", enc: format.EncodingZstd, edit: func(f *format.Frame, b []byte) []byte {
			f.StoredSize, f.Digest = uint64(len(bomb)), format.Sum(bomb)
			return bomb
		}, target: format.ErrInvalid, subs: []string{"frame sha256:", "bomb"}},
		{name: "zstd bomb without content size", enc: format.EncodingZstd, edit: func(f *format.Frame, b []byte) []byte {
			f.StoredSize, f.Digest = uint64(len(bomb2)), format.Sum(bomb2)
			return bomb2
		}, target: format.ErrInvalid, subs: []string{"frame sha256:"}},
		{name: "missing frame", edit: func(f *format.Frame, b []byte) []byte {
			f.Digest = other
			return b
		}, target: store.ErrNotFound},
		{name: "chunk not in image", read: other, target: reader.ErrChunkNotFound, subs: []string{other.String()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := rt.Image{Streams: s, Encoding: tc.enc}
			if tc.edit != nil {
				img.EditFrame = func(tree bool, i int, f *format.Frame, b []byte) []byte {
					if tree {
						return b
					}
					return tc.edit(f, b)
				}
			}
			st, desc := build(t, img)
			im, err := reader.Open(t.Context(), st, desc)
			if err != nil {
				t.Fatal(err)
			}
			src := reader.LocalFrames(st)
			if tc.ranges {
				src = reader.PackRanges(st)
			}
			cr := reader.NewChunkReader(im, src)
			want := tc.read
			if want.IsZero() {
				want = id
			}
			got, err := cr.ReadChunk(t.Context(), want)
			wantErr(t, err, tc.target, tc.subs...)
			t.Log(err)
			if got != nil {
				t.Errorf("got %d bytes with the error", len(got))
			}
			// The tree stream is intact.
			if _, err := cr.Tree(t.Context(), s.Root); err != nil {
				t.Errorf("Tree: %v", err)
			}
		})
	}
}

func flip(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)/2] ^= 0xff
	return c
}

// TestChunkReaderSameFrameOtherChunks: two packs hold the same stored frame
// bytes but the second index declares another chunk; reading that chunk
// must verify it, not reuse the first frame's verification.
func TestChunkReaderSameFrameOtherChunks(t *testing.T) {
	a, b := []byte("chunk a, ten"), []byte("chunk b")
	bogus := format.Sum([]byte("bogus"))
	s := rt.Streams{Data: [][]byte{a, b}}
	root := rt.Dir("", 0o755)
	s.Root, s.Trees = rt.Encode(root).Root, rt.Encode(root).Trees
	st, desc := build(t, rt.Image{Streams: s, ChunksPerFrame: 2})
	img, err := reader.Open(t.Context(), st, desc)
	if err != nil {
		t.Fatal(err)
	}
	// A second data pack: same frame bytes, one chunk declared over both.
	p := img.DataPacks[0]
	idx := *p.Index
	idx.Frames = []format.Frame{idx.Frames[0]}
	idx.Frames[0].Chunks = []format.ChunkRef{{ID: bogus, Size: uint32(len(a) + len(b))}}
	p.Index = &idx
	img.DataPacks = append(img.DataPacks, p)
	cr := reader.NewChunkReader(img, reader.PackRanges(st))
	if got, err := cr.ReadChunk(t.Context(), format.Sum(a)); err != nil || !bytes.Equal(got, a) {
		t.Fatalf("chunk a: %q, %v", got, err)
	}
	_, err = cr.ReadChunk(t.Context(), bogus)
	wantErr(t, err, store.ErrDigestMismatch, bogus.String())
}
