package reader_test

import (
	"encoding/json"
	"runtime"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	rt "github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/memstore"
)

func TestOpen(t *testing.T) {
	s := rt.Encode(sampleTree())
	st, desc := build(t, rt.Image{Streams: s, ChunksPerFrame: 2, FramesPerPack: 2})
	img, err := reader.Open(t.Context(), st, desc)
	if err != nil {
		t.Fatal(err)
	}
	if img.Root != s.Root {
		t.Errorf("Root = %s, want %s", img.Root, s.Root)
	}
	wantTree := (len(s.Trees) + 3) / 4 // 2 chunks a frame, 2 frames a pack
	wantData := (len(s.Data) + 3) / 4
	if len(img.TreePacks) != wantTree || len(img.DataPacks) != wantData {
		t.Errorf("%d tree and %d data packs, want %d and %d", len(img.TreePacks), len(img.DataPacks), wantTree, wantData)
	}
	for _, p := range append(img.TreePacks, img.DataPacks...) {
		if p.Index.PackSize() != uint64(p.Descriptor.Size) {
			t.Errorf("pack %s: index size %d, descriptor %d", p.Descriptor.Digest, p.Index.PackSize(), p.Descriptor.Size)
		}
	}
	if img.Config.OS != "linux" || img.Descriptor.Digest != desc.Digest {
		t.Errorf("config %+v, descriptor %+v", img.Config.Platform, img.Descriptor)
	}
	// Size 0 means unknown.
	desc.Size = 0
	if _, err := reader.Open(t.Context(), st, desc); err != nil {
		t.Errorf("Open with size 0: %v", err)
	}
}

func TestOpenRejects(t *testing.T) {
	s := rt.Encode(sampleTree())
	other := format.Sum([]byte("other"))
	tests := []struct {
		name   string
		edit   func(m *ocispec.Manifest)
		cfg    *ocispec.Image
		target error
		subs   []string
	}{
		{name: "format version", edit: func(m *ocispec.Manifest) { m.Annotations[format.AnnotationFormat] = "2" },
			target: reader.ErrUnsupportedFormat, subs: []string{`unsupported format version "2"`}},
		{name: "not oci2", edit: func(m *ocispec.Manifest) { delete(m.Annotations, format.AnnotationFormat) },
			target: reader.ErrNotOCI2, subs: []string{format.AnnotationFormat}},
		{name: "no root", edit: func(m *ocispec.Manifest) { delete(m.Annotations, format.AnnotationRoot) },
			target: reader.ErrInvalidImage, subs: []string{format.AnnotationRoot}},
		{name: "bad root", edit: func(m *ocispec.Manifest) { m.Annotations[format.AnnotationRoot] = "sha256:xyz" },
			target: reader.ErrInvalidImage, subs: []string{format.AnnotationRoot}},
		{name: "root not first", edit: func(m *ocispec.Manifest) { m.Annotations[format.AnnotationRoot] = other.String() },
			target: reader.ErrInvalidImage, subs: []string{"not the first chunk"}},
		{name: "manifest media type", edit: func(m *ocispec.Manifest) { m.MediaType = ocispec.MediaTypeImageIndex },
			target: reader.ErrInvalidImage, subs: []string{"mediaType"}},
		{name: "schema version", edit: func(m *ocispec.Manifest) { m.SchemaVersion = 1 },
			target: reader.ErrInvalidImage, subs: []string{"schemaVersion"}},
		{name: "config media type", edit: func(m *ocispec.Manifest) { m.Config.MediaType = "application/json" },
			target: reader.ErrInvalidImage, subs: []string{"config media type"}},
		{name: "odd layers", edit: func(m *ocispec.Manifest) { m.Layers = m.Layers[:3] },
			target: reader.ErrInvalidImage, subs: []string{"pairs"}},
		{name: "no layers", edit: func(m *ocispec.Manifest) { m.Layers = nil },
			target: reader.ErrInvalidImage, subs: []string{"pairs"}},
		{name: "no tree pack", edit: func(m *ocispec.Manifest) { m.Layers = m.Layers[2:] },
			target: reader.ErrInvalidImage, subs: []string{"no tree pack"}},
		{name: "index media type", edit: func(m *ocispec.Manifest) { m.Layers[0].MediaType = ocispec.MediaTypeImageLayerGzip },
			target: reader.ErrInvalidImage, subs: []string{"layer 0", format.MediaTypePackIndex}},
		{name: "pack media type", edit: func(m *ocispec.Manifest) { m.Layers[3].MediaType = ocispec.MediaTypeImageLayer },
			target: reader.ErrInvalidImage, subs: []string{"layer 3", "not an oci2 pack"}},
		{name: "pack not annotated", edit: func(m *ocispec.Manifest) { m.Layers[1].Annotations = nil },
			target: reader.ErrInvalidImage, subs: []string{"layer 1", format.AnnotationPackIndex}},
		{name: "pack annotated with other index", edit: func(m *ocispec.Manifest) {
			m.Layers[1].Annotations[format.AnnotationPackIndex] = m.Layers[2].Digest.String()
		}, target: reader.ErrInvalidImage, subs: []string{"layer 1"}},
		{name: "tree pack after data", edit: func(m *ocispec.Manifest) {
			m.Layers = append(m.Layers[2:4:4], m.Layers[0:2]...)
		}, target: reader.ErrInvalidImage, subs: []string{"tree pack after data packs"}},
		{name: "pack size", edit: func(m *ocispec.Manifest) { m.Layers[3].Size++ },
			target: reader.ErrInvalidImage, subs: []string{"descriptor size"}},
		{name: "index size limit", edit: func(m *ocispec.Manifest) { m.Layers[0].Size = format.MaxPackIndexSize + 1 },
			target: reader.ErrInvalidImage, subs: []string{"pack index size"}},
		{name: "index size mismatch", edit: func(m *ocispec.Manifest) { m.Layers[2].Size-- },
			target: store.ErrSizeMismatch, subs: []string{"pack index"}},
		{name: "missing index", edit: func(m *ocispec.Manifest) {
			m.Layers[2].Digest = other.Digest()
			m.Layers[3].Annotations[format.AnnotationPackIndex] = other.String()
		}, target: store.ErrNotFound, subs: []string{other.String()}},
		{name: "config env NUL", cfg: &ocispec.Image{RootFS: ocispec.RootFS{Type: "layers"},
			Config: ocispec.ImageConfig{Env: []string{"PATH=/bin", "LD_PRELOAD=\x00/x.so"}}},
			target: format.ErrInvalid, subs: []string{`config Env[1] "LD_PRELOAD=\x00/x.so" contains a NUL byte`}},
		{name: "config cmd NUL", cfg: &ocispec.Image{RootFS: ocispec.RootFS{Type: "layers"},
			Config: ocispec.ImageConfig{Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c\x00"}}},
			target: reader.ErrInvalidImage, subs: []string{`config Cmd[0]`, "NUL"}},
		{name: "config relative workdir", cfg: &ocispec.Image{RootFS: ocispec.RootFS{Type: "layers"},
			Config: ocispec.ImageConfig{WorkingDir: "srv"}},
			target: reader.ErrInvalidImage, subs: []string{`config WorkingDir "srv" is not an absolute path`}},
		{name: "diff ids", cfg: &ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{other.Digest()}}},
			target: reader.ErrInvalidImage, subs: []string{"diff_ids"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, desc := build(t, rt.Image{Streams: s, EditManifest: tc.edit, Config: tc.cfg})
			_, err := reader.Open(t.Context(), st, desc)
			wantErr(t, err, tc.target, tc.subs...)
		})
	}
}

func TestOpenSizeBounds(t *testing.T) {
	st := memstore.New()
	big := make([]byte, reader.MaxManifestSize+1)
	desc, err := rt.PutBlob(t.Context(), st, ocispec.MediaTypeImageManifest, big)
	if err != nil {
		t.Fatal(err)
	}
	_, err = reader.Open(t.Context(), st, desc)
	wantErr(t, err, store.ErrTooLarge, "manifest")
	desc.Size = 0 // unknown size: the store bounds the read
	_, err = reader.Open(t.Context(), st, desc)
	wantErr(t, err, store.ErrTooLarge)
	desc.Size = 10
	_, err = reader.Open(t.Context(), st, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: desc.Digest, Size: 10})
	wantErr(t, err, reader.ErrInvalidImage, "media type")
}

func TestResolve(t *testing.T) {
	ctx := t.Context()
	st := memstore.New()
	var descs []ocispec.Descriptor
	for i, arch := range []string{"arm64", "amd64", "riscv64"} {
		cfg := &ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch},
			RootFS: ocispec.RootFS{Type: "layers"}}
		root := rt.Dir("", 0o755, rt.File("f", 0o644, randBytes(uint64(i), 10)))
		d, err := rt.Build(ctx, st, rt.Image{Streams: rt.Encode(root), Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		d.Platform = &cfg.Platform
		descs = append(descs, d)
	}
	attest := descs[0]
	attest.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: append(descs, attest)}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)
	idesc, err := rt.PutBlob(ctx, st, ocispec.MediaTypeImageIndex, ib)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetRef(ctx, "example.com/multi:1", idesc); err != nil {
		t.Fatal(err)
	}
	one := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{descs[2], attest}}
	one.SchemaVersion = 2
	ob, _ := json.Marshal(one)
	odesc, err := rt.PutBlob(ctx, st, ocispec.MediaTypeImageIndex, ob)
	if err != nil {
		t.Fatal(err)
	}

	check := func(ref string, p *ocispec.Platform, want digest.Digest) {
		t.Helper()
		got, err := reader.Resolve(ctx, st, st, ref, p)
		if err != nil {
			t.Fatalf("Resolve(%q, %v): %v", ref, p, err)
		}
		if got.Digest != want || got.MediaType != ocispec.MediaTypeImageManifest || got.Size == 0 {
			t.Errorf("Resolve(%q, %v) = %+v, want %s", ref, p, got, want)
		}
		if _, err := reader.Open(ctx, st, got); err != nil {
			t.Errorf("Open(Resolve(%q)): %v", ref, err)
		}
	}
	check("example.com/multi:1", &ocispec.Platform{OS: "linux", Architecture: "arm64"}, descs[0].Digest)
	check(idesc.Digest.String(), &ocispec.Platform{OS: "linux", Architecture: "riscv64"}, descs[2].Digest)
	check(odesc.Digest.String(), nil, descs[2].Digest)    // the only one (attestation skipped)
	check(descs[1].Digest.String(), nil, descs[1].Digest) // a manifest digest
	if runtime.GOOS == "linux" && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") {
		want := descs[1].Digest
		if runtime.GOARCH == "arm64" {
			want = descs[0].Digest
		}
		check("example.com/multi:1", nil, want) // the host's
	}

	_, err = reader.Resolve(ctx, st, st, "example.com/multi:1", &ocispec.Platform{OS: "linux", Architecture: "s390x"})
	wantErr(t, err, reader.ErrNoPlatform, "linux/s390x", "linux/arm64, linux/amd64, linux/riscv64")
	_, err = reader.Resolve(ctx, st, st, "example.com/nope:1", nil)
	wantErr(t, err, store.ErrNotFound, "example.com/nope:1")
	_, err = reader.Resolve(ctx, st, st, format.Sum([]byte("x")).String(), nil)
	wantErr(t, err, store.ErrNotFound)
	cfgDesc := descs[0] // a config is neither index nor manifest
	img, _ := reader.Open(ctx, st, descs[0])
	cfgDesc = img.Manifest.Config
	_, err = reader.Resolve(ctx, st, st, cfgDesc.Digest.String(), nil)
	wantErr(t, err, reader.ErrInvalidImage, "neither")
}
