package reader

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store"
)

// Size bounds of the JSON blobs a reader accepts.
const (
	// MaxManifestSize bounds an image manifest or image index.
	MaxManifestSize = format.MaxManifestSize
	// MaxConfigSize bounds an image config.
	MaxConfigSize = 8 << 20
)

// indexReadWorkers bounds concurrent pack index reads (round trips to a
// remote store).
const indexReadWorkers = 8

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidImage, fmt.Sprintf(format, args...))
}

// readJSONBlob reads a blob of at most max bytes whose descriptor size, when
// known (non-zero), must match.
func readJSONBlob(ctx context.Context, r store.Reader, d digest.Digest, size, max int64) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("%w: digest %q: %v", ErrInvalidImage, d, err)
	}
	if size > max {
		return nil, fmt.Errorf("blob %s: size %d over the %d byte limit: %w", d, size, max, store.ErrTooLarge)
	}
	if size < 0 {
		return nil, invalidf("blob %s: negative size %d", d, size)
	}
	b, err := r.ReadBlob(ctx, d, max)
	if err != nil {
		return nil, err
	}
	if size != 0 && int64(len(b)) != size {
		return nil, fmt.Errorf("blob %s: %d bytes, descriptor says %d: %w", d, len(b), size, store.ErrSizeMismatch)
	}
	return b, nil
}

func open(ctx context.Context, r store.Reader, desc ocispec.Descriptor) (*Image, error) {
	if desc.MediaType != "" && desc.MediaType != ocispec.MediaTypeImageManifest {
		return nil, invalidf("manifest %s: media type %q, want %q", desc.Digest, desc.MediaType, ocispec.MediaTypeImageManifest)
	}
	b, err := readJSONBlob(ctx, r, desc.Digest, desc.Size, MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	if desc.Size == 0 {
		desc.Size = int64(len(b))
	}
	desc.MediaType = ocispec.MediaTypeImageManifest
	img := &Image{Descriptor: desc}
	if err := json.Unmarshal(b, &img.Manifest); err != nil {
		return nil, invalidf("manifest %s: %v", desc.Digest, err)
	}
	if err := img.checkManifest(); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if err := img.readConfig(ctx, r); err != nil {
		return nil, err
	}
	if err := img.readPacks(ctx, r); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	return img, nil
}

// checkManifest validates the manifest's fields and annotations and lays out
// the packs (indexes are read later).
func (img *Image) checkManifest() error {
	m := &img.Manifest
	if m.SchemaVersion != 2 {
		return invalidf("schemaVersion %d, want 2", m.SchemaVersion)
	}
	if m.MediaType != ocispec.MediaTypeImageManifest {
		return invalidf("mediaType %q, want %q", m.MediaType, ocispec.MediaTypeImageManifest)
	}
	v, ok := m.Annotations[format.AnnotationFormat]
	if !ok {
		return fmt.Errorf("%w: no %s annotation", ErrNotOCI2, format.AnnotationFormat)
	}
	if v != format.FormatVersion {
		return fmt.Errorf("%w %q (this reader supports %q)", ErrUnsupportedFormat, v, format.FormatVersion)
	}
	rs, ok := m.Annotations[format.AnnotationRoot]
	if !ok {
		return invalidf("no %s annotation", format.AnnotationRoot)
	}
	root, err := format.ParseChunkID(rs)
	if err != nil {
		return invalidf("annotation %s: %v", format.AnnotationRoot, err)
	}
	img.Root = root
	if m.Config.MediaType != ocispec.MediaTypeImageConfig {
		return invalidf("config media type %q, want %q", m.Config.MediaType, ocispec.MediaTypeImageConfig)
	}
	return img.layoutPacks()
}

// layoutPacks checks that layers come in (pack index, pack) pairs, tree
// packs before data packs.
func (img *Image) layoutPacks() error {
	layers := img.Manifest.Layers
	if len(layers) == 0 || len(layers)%2 != 0 {
		return invalidf("%d layers: want (pack index, pack) pairs, at least one", len(layers))
	}
	for i := 0; i < len(layers); i += 2 {
		idx, pk := layers[i], layers[i+1]
		if idx.MediaType != format.MediaTypePackIndex {
			return invalidf("layer %d: media type %q, want %q", i, idx.MediaType, format.MediaTypePackIndex)
		}
		if idx.Size <= 0 || idx.Size > format.MaxPackIndexSize {
			return invalidf("layer %d: pack index size %d not in [1, %d]", i, idx.Size, format.MaxPackIndexSize)
		}
		if got := pk.Annotations[format.AnnotationPackIndex]; got != idx.Digest.String() {
			return invalidf("layer %d: pack %s annotated %s=%q, want the preceding index %s",
				i+1, pk.Digest, format.AnnotationPackIndex, got, idx.Digest)
		}
		if pk.Size <= 0 {
			return invalidf("layer %d: pack size %d", i+1, pk.Size)
		}
		if err := pk.Digest.Validate(); err != nil {
			return invalidf("layer %d: digest %q: %v", i+1, pk.Digest, err)
		}
		p := Pack{Descriptor: pk, IndexDescriptor: idx}
		switch pk.MediaType {
		case format.MediaTypeTreePack:
			if len(img.DataPacks) > 0 {
				return invalidf("layer %d: tree pack after data packs", i+1)
			}
			img.TreePacks = append(img.TreePacks, p)
		case format.MediaTypeDataPack:
			img.DataPacks = append(img.DataPacks, p)
		default:
			return invalidf("layer %d: media type %q is not an oci2 pack", i+1, pk.MediaType)
		}
	}
	if len(img.TreePacks) == 0 {
		return invalidf("no tree pack")
	}
	return nil
}

func (img *Image) readConfig(ctx context.Context, r store.Reader) error {
	cd := img.Manifest.Config
	if cd.Size <= 0 {
		return invalidf("config %s: descriptor size %d", cd.Digest, cd.Size)
	}
	b, err := readJSONBlob(ctx, r, cd.Digest, cd.Size, MaxConfigSize)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	if err := json.Unmarshal(b, &img.Config); err != nil {
		return invalidf("config %s: %v", cd.Digest, err)
	}
	if rf := img.Config.RootFS; rf.Type != "layers" || len(rf.DiffIDs) != 0 {
		return invalidf("config %s: rootfs %q with %d diff_ids, want \"layers\" with none",
			cd.Digest, rf.Type, len(rf.DiffIDs))
	}
	if err := format.ValidateConfig(&img.Config.Config); err != nil {
		return fmt.Errorf("%w: config %s: %w", ErrInvalidImage, cd.Digest, err)
	}
	return nil
}

// readPacks reads, decodes and checks every pack index.
func (img *Image) readPacks(ctx context.Context, r store.Reader) error {
	var all []*Pack
	for i := range img.TreePacks {
		all = append(all, &img.TreePacks[i])
	}
	for i := range img.DataPacks {
		all = append(all, &img.DataPacks[i])
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(indexReadWorkers)
	for _, p := range all {
		g.Go(func() error { return p.load(gctx, r) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	first := img.TreePacks[0].Index.Frames[0].Chunks[0].ID
	if first != img.Root {
		return invalidf("root %s is not the first chunk of the tree stream (%s)", img.Root, first)
	}
	return nil
}

// load reads and checks p's index against p's descriptor.
func (p *Pack) load(ctx context.Context, r store.Reader) error {
	d := p.IndexDescriptor.Digest
	b, err := r.ReadBlob(ctx, d, format.MaxPackIndexSize)
	if err != nil {
		return fmt.Errorf("reading pack index %s: %w", d, err)
	}
	if int64(len(b)) != p.IndexDescriptor.Size {
		return fmt.Errorf("pack index %s: %d bytes, descriptor says %d: %w",
			d, len(b), p.IndexDescriptor.Size, store.ErrSizeMismatch)
	}
	idx, err := format.DecodePackIndex(b)
	if err != nil {
		return fmt.Errorf("%w: pack index %s: %w", ErrInvalidImage, d, err)
	}
	if len(idx.Frames) == 0 {
		return invalidf("pack index %s: no frames", d)
	}
	p.offsets = make([]uint64, len(idx.Frames))
	var off uint64
	for i := range idx.Frames {
		f := &idx.Frames[i]
		if err := checkFrame(f); err != nil {
			return fmt.Errorf("pack index %s: frame %d: %w", d, i, err)
		}
		p.offsets[i] = off
		off += f.StoredSize
	}
	if off != uint64(p.Descriptor.Size) {
		return invalidf("pack %s: descriptor size %d, its index %s describes %d bytes",
			p.Descriptor.Digest, p.Descriptor.Size, d, off)
	}
	p.Index = idx
	return nil
}

// checkFrame enforces the frame rules of SPEC.md §5.3 and §7 (the pack
// index decoder checks them too; this keeps the guarantee local): a raw
// frame stores exactly its raw bytes, a zstd frame at most the zstd bound
// of them, which are at most MaxFrameRawSize.
func checkFrame(f *format.Frame) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidImage, err)
	}
	return nil
}
