package readertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store"
)

// Store is what Build writes to.
type Store interface {
	store.Writer
	store.Reader
}

// corrupter stores bytes under a digest they do not hash to
// (memstore.Store.Corrupt).
type corrupter interface {
	Corrupt(ctx context.Context, d digest.Digest, data []byte) error
}

// Image describes a hand-made image. Zero fields get working defaults.
type Image struct {
	Streams
	// ChunksPerFrame cuts frames (default 4); FramesPerPack cuts packs
	// (default: one pack per stream).
	ChunksPerFrame int
	FramesPerPack  int
	// Encoding of frames (default raw); zstd frames that would not be
	// smaller stay raw, as SPEC.md §5.2 says.
	Encoding format.Encoding
	// EditFrame, when set, may change a frame's index entry and return other
	// stored bytes (corruption). Frames whose bytes no longer hash to
	// f.Digest are stored with the store's Corrupt method when it has one.
	EditFrame func(tree bool, i int, f *format.Frame, stored []byte) []byte
	// Config defaults to a linux/amd64 config with an empty rootfs.
	Config *ocispec.Image
	// EditManifest may change the manifest before it is stored.
	EditManifest func(m *ocispec.Manifest)
}

// Build stores img (frames as blobs, packs, pack indexes, config and
// manifest) and returns the manifest descriptor.
func Build(ctx context.Context, st Store, img Image) (ocispec.Descriptor, error) {
	cfg := img.Config
	if cfg == nil {
		cfg = &ocispec.Image{
			Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
		}
	}
	cfgDesc, err := putJSON(ctx, st, ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Annotations: map[string]string{
			format.AnnotationFormat: format.FormatVersion,
			format.AnnotationRoot:   img.Root.String(),
		},
	}
	m.SchemaVersion = 2
	for _, s := range []struct {
		tree   bool
		chunks [][]byte
		mt     string
	}{{true, img.Trees, format.MediaTypeTreePack}, {false, img.Data, format.MediaTypeDataPack}} {
		layers, err := img.buildStream(ctx, st, s.tree, s.chunks, s.mt)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		m.Layers = append(m.Layers, layers...)
	}
	if img.EditManifest != nil {
		img.EditManifest(&m)
	}
	return putJSON(ctx, st, ocispec.MediaTypeImageManifest, &m)
}

func putJSON(ctx context.Context, st Store, mt string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return PutBlob(ctx, st, mt, b)
}

// PutBlob stores b and returns its descriptor.
func PutBlob(ctx context.Context, st store.Writer, mt string, b []byte) (ocispec.Descriptor, error) {
	d := digest.FromBytes(b)
	if err := st.PutBlob(ctx, d, b); err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}, nil
}

var zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))

// EncodeZstd compresses raw as one zstd frame.
func EncodeZstd(raw []byte) []byte { return zenc.EncodeAll(raw, nil) }

// EncodeZstdStream compresses raw with the streaming encoder, whose frame
// header does not declare the content size.
func EncodeZstdStream(raw []byte) []byte {
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	w.Write(raw)
	w.Close()
	return buf.Bytes()
}

// buildStream cuts chunks into frames and packs and stores them.
func (img *Image) buildStream(ctx context.Context, st Store, tree bool, chunks [][]byte, mt string) ([]ocispec.Descriptor, error) {
	per := img.ChunksPerFrame
	if per <= 0 {
		per = 4
	}
	type built struct {
		f      format.Frame
		stored []byte
	}
	var frames []built
	for i := 0; i < len(chunks); i += per {
		var raw []byte
		var f format.Frame
		for _, c := range chunks[i:min(i+per, len(chunks))] {
			raw = append(raw, c...)
			f.Chunks = append(f.Chunks, format.ChunkRef{ID: format.Sum(c), Size: uint32(len(c))})
		}
		stored := raw
		if img.Encoding == format.EncodingZstd {
			if z := EncodeZstd(raw); len(z) < len(raw) {
				f.Encoding, stored = format.EncodingZstd, z
			}
		}
		f.StoredSize, f.Digest = uint64(len(stored)), format.Sum(stored)
		if err := st.PutBlob(ctx, f.Digest.Digest(), stored); err != nil {
			return nil, err
		}
		if img.EditFrame != nil {
			stored = img.EditFrame(tree, len(frames), &f, stored)
			if err := putFrame(ctx, st, f.Digest, stored); err != nil {
				return nil, err
			}
		}
		frames = append(frames, built{f, stored})
	}
	perPack := img.FramesPerPack
	if perPack <= 0 {
		perPack = max(len(frames), 1)
	}
	var layers []ocispec.Descriptor
	for i := 0; i < len(frames); i += perPack {
		var idx format.PackIndex
		var packBytes []byte
		for _, b := range frames[i:min(i+perPack, len(frames))] {
			idx.Frames = append(idx.Frames, b.f)
			packBytes = append(packBytes, b.stored...)
		}
		ib, err := idx.Encode()
		if err != nil {
			return nil, fmt.Errorf("encoding pack index: %w", err)
		}
		idesc, err := PutBlob(ctx, st, format.MediaTypePackIndex, ib)
		if err != nil {
			return nil, err
		}
		pdesc, err := PutBlob(ctx, st, mt, packBytes)
		if err != nil {
			return nil, err
		}
		pdesc.Annotations = map[string]string{format.AnnotationPackIndex: idesc.Digest.String()}
		layers = append(layers, idesc, pdesc)
	}
	return layers, nil
}

// putFrame stores an edited frame under id: normally when the bytes match,
// else by corrupting the stored blob of id (which must exist).
func putFrame(ctx context.Context, st Store, id format.ChunkID, stored []byte) error {
	if format.Sum(stored) == id {
		return st.PutBlob(ctx, id.Digest(), stored)
	}
	c, ok := st.(corrupter)
	if !ok {
		return fmt.Errorf("frame %s: edited bytes do not match and the store cannot corrupt", id)
	}
	if _, err := st.Stat(ctx, id.Digest()); err != nil {
		return nil // an edited digest that names nothing: the frame is missing
	}
	return c.Corrupt(ctx, id.Digest(), stored)
}
