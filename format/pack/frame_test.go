package pack

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store"
)

// frameOf encodes chunks into a frame.
func frameOf(t *testing.T, chunks ...[]byte) (format.Frame, []byte) {
	t.Helper()
	f := format.Frame{}
	raw := bytes.Join(chunks, nil)
	for _, c := range chunks {
		f.Chunks = append(f.Chunks, format.ChunkRef{ID: format.Sum(c), Size: uint32(len(c))})
	}
	var stored []byte
	f.Encoding, stored = EncodeFrame(raw)
	f.StoredSize, f.Digest = uint64(len(stored)), format.Sum(stored)
	return f, stored
}

func TestEncodeDecodeFrame(t *testing.T) {
	text := bytes.Repeat([]byte("compressible text "), 5000)
	random := make([]byte, 70000)
	rand.New(rand.NewSource(1)).Read(random)
	for _, c := range []struct {
		name   string
		chunks [][]byte
		enc    format.Encoding
	}{
		{"compressible", [][]byte{text[:40000], text[40000:]}, format.EncodingZstd},
		{"random", [][]byte{random}, format.EncodingRaw},
		{"one byte", [][]byte{{'x'}}, format.EncodingRaw},
	} {
		f, stored := frameOf(t, c.chunks...)
		if f.Encoding != c.enc {
			t.Errorf("%s: encoding %d, want %d", c.name, f.Encoding, c.enc)
		}
		raw, err := DecodeFrame(&f, stored, true)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !bytes.Equal(raw, bytes.Join(c.chunks, nil)) {
			t.Fatalf("%s: decoded bytes differ", c.name)
		}
	}
}

// TestEncodeFrameGolden pins the encoder's output (SPEC.md §5.2).
func TestEncodeFrameGolden(t *testing.T) {
	raw := bytes.Repeat([]byte("oci2 golden frame "), 1000)
	enc, stored := EncodeFrame(raw)
	got := format.Sum(stored).String()
	if enc != format.EncodingZstd || len(stored) != 38 || got != goldenFrame {
		t.Fatalf("EncodeFrame: encoding %d, %d bytes, %s; want zstd, 38 bytes, %s", enc, len(stored), got, goldenFrame)
	}
}

const goldenFrame = "sha256:48765105a338605061d14f7fe2973844e0a1ba2443921e3e8b7b7594c5dcc854"

func expectErr(t *testing.T, what string, err error, target error, text string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted", what)
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("%s: error %v is not %v", what, err, target)
	}
	if !strings.Contains(err.Error(), text) {
		t.Fatalf("%s: error %q does not contain %q", what, err, text)
	}
}

func TestDecodeFrameRejects(t *testing.T) {
	text := bytes.Repeat([]byte("some text "), 3000)
	f, stored := frameOf(t, text[:10000], text[10000:])

	bad := bytes.Clone(stored)
	bad[len(bad)/2] ^= 1
	_, err := DecodeFrame(&f, bad, false)
	expectErr(t, "flipped byte", err, store.ErrDigestMismatch, "stored bytes hash to")

	_, err = DecodeFrame(&f, stored[:len(stored)-1], false)
	expectErr(t, "short stored bytes", err, store.ErrSizeMismatch, "stored bytes, index says")

	// A truncated zstd frame whose index matches the truncated bytes.
	tf := f
	cut := stored[:len(stored)-5]
	tf.StoredSize, tf.Digest = uint64(len(cut)), format.Sum(cut)
	_, err = DecodeFrame(&tf, cut, false)
	expectErr(t, "truncated zstd frame", err, format.ErrInvalid, "decoding zstd frame")

	// Wrong chunk ID, caught only with verifyChunks.
	wf := f
	wf.Chunks = append([]format.ChunkRef{}, f.Chunks...)
	wf.Chunks[1].ID = idOf("other")
	if _, err := DecodeFrame(&wf, stored, false); err != nil {
		t.Fatalf("without verifyChunks: %v", err)
	}
	_, err = DecodeFrame(&wf, stored, true)
	expectErr(t, "wrong chunk id", err, store.ErrDigestMismatch, "chunk 1")

	// Chunk sizes that do not add up to the decoded size.
	sf := f
	sf.Chunks = []format.ChunkRef{{ID: f.Chunks[0].ID, Size: 10000}, {ID: f.Chunks[1].ID, Size: 19999}}
	_, err = DecodeFrame(&sf, stored, false)
	expectErr(t, "raw size too large", err, format.ErrInvalid, "declares 30000 content bytes, index says raw size 29999")

	// A raw frame whose stored size is not its raw size.
	rf := format.Frame{Encoding: format.EncodingRaw, StoredSize: 3, Digest: format.Sum([]byte("abc")),
		Chunks: []format.ChunkRef{{ID: idOf("ab"), Size: 2}}}
	_, err = DecodeFrame(&rf, []byte("abc"), false)
	expectErr(t, "raw frame size", err, format.ErrInvalid, "raw frame stored size 3 != raw size 2")
}

func TestDecodeFrameRejectsBombs(t *testing.T) {
	zeros := make([]byte, 64<<20)
	claim := []format.ChunkRef{{ID: idOf("small"), Size: 1 << 20}}

	// A frame that says how big it is.
	e, _ := zstd.NewWriter(nil)
	withFCS := e.EncodeAll(zeros, nil)
	f := format.Frame{Encoding: format.EncodingZstd, StoredSize: uint64(len(withFCS)), Digest: format.Sum(withFCS), Chunks: claim}
	_, err := DecodeFrame(&f, withFCS, false)
	expectErr(t, "bomb with content size", err, format.ErrInvalid, "declares 67108864 content bytes, index says raw size 1048576 (decompression bomb?)")

	// A streamed frame without a content size.
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	w.Write(zeros)
	w.Close()
	noFCS := buf.Bytes()
	var h zstd.Header
	if err := h.Decode(noFCS); err != nil || h.HasFCS {
		t.Fatalf("streamed frame has a content size (%v)", err)
	}
	f = format.Frame{Encoding: format.EncodingZstd, StoredSize: uint64(len(noFCS)), Digest: format.Sum(noFCS), Chunks: claim}
	_, err = DecodeFrame(&f, noFCS, false)
	expectErr(t, "bomb without content size", err, format.ErrInvalid, "decodes to more than its raw size 1048576 (decompression bomb)")
	// Also into a buffer larger than the frame's raw size.
	_, err = DecodeFrameBuf(&f, noFCS, false, make([]byte, 8<<20))
	expectErr(t, "bomb without content size, into a buffer", err, format.ErrInvalid, "decodes to more than its raw size 1048576 (decompression bomb)")

	// A frame whose chunks claim more than a frame may hold.
	f.Chunks = []format.ChunkRef{{ID: idOf("a"), Size: format.MaxFrameRawSize}, {ID: idOf("b"), Size: 1}}
	_, err = DecodeFrame(&f, noFCS, false)
	expectErr(t, "oversized frame", err, format.ErrInvalid, "raw size exceeds 16777216 bytes")
}

func TestWritePack(t *testing.T) {
	st := newMemStore()
	packs, _ := runPacker(t, genChunks(8, 3<<20), Options{Store: st})
	if len(packs) != 1 {
		t.Fatalf("%d packs, want 1", len(packs))
	}
	var buf bytes.Buffer
	if err := WritePack(context.Background(), &buf, &packs[0], st.frame); err != nil {
		t.Fatal(err)
	}
	if uint64(buf.Len()) != packs[0].PackSize() {
		t.Fatalf("pack of %d bytes, index says %d", buf.Len(), packs[0].PackSize())
	}
	var off uint64
	for i := range packs[0].Frames {
		f := &packs[0].Frames[i]
		if _, err := DecodeFrame(f, buf.Bytes()[off:off+f.StoredSize], true); err != nil {
			t.Fatalf("frame %d at %d: %v", i, off, err)
		}
		off += f.StoredSize
	}
	short := func(ctx context.Context, f *format.Frame) ([]byte, error) { return []byte("x"), nil }
	err := WritePack(context.Background(), &buf, &packs[0], short)
	expectErr(t, "short frame", err, store.ErrSizeMismatch, "frame 0")
}

// TestDecodeFrameBuf: a zstd frame decodes into a buffer that can hold
// it, without allocating its raw bytes again; a raw frame is its stored
// bytes; a buffer too small is not written.
func TestDecodeFrameBuf(t *testing.T) {
	text := bytes.Repeat([]byte("decoded into the caller's buffer "), 2000)
	f, stored := frameOf(t, text[:30000], text[30000:])
	buf := make([]byte, 1<<20)
	var raw []byte
	allocs := testing.AllocsPerRun(20, func() {
		var err error
		if raw, err = DecodeFrameBuf(&f, stored, false, buf); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(raw, text) || &raw[0] != &buf[0] {
		t.Fatal("frame not decoded into the buffer")
	}
	if allocs > 1 {
		t.Errorf("%.0f allocations decoding into a buffer, want at most 1", allocs)
	}
	small := make([]byte, 10)
	if raw, err := DecodeFrameBuf(&f, stored, true, small); err != nil || !bytes.Equal(raw, text) || small[0] != 0 {
		t.Fatalf("into a small buffer: %v", err)
	}
	random := make([]byte, 5000)
	rand.New(rand.NewSource(2)).Read(random)
	rf, rstored := frameOf(t, random)
	if raw, err := DecodeFrameBuf(&rf, rstored, true, buf); err != nil || &raw[0] != &rstored[0] {
		t.Fatalf("raw frame: %v", err)
	}
}
