package convert

import (
	"context"
	"fmt"
	"os"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/framesource"
)

// ExportStore is what Export reads from.
type ExportStore interface {
	framesource.Store
}

// ExportProgress is reported while the layer is written.
type ExportProgress struct {
	Entries int64 // entries written
	Bytes   int64 // uncompressed tar bytes written
}

// ExportOptions configure Export.
type ExportOptions struct {
	// Platform selects the manifest of a multi-platform image (nil: the
	// host's, or the only one).
	Platform    *ocispec.Platform
	Compression Compression // "" is gzip
	// Frames reads the image's frames (nil: the frames of a local store,
	// stored or virtual, framesource.New).
	Frames   reader.FrameSource
	Progress func(ExportProgress)
}

// ExportResult describes the written image.
type ExportResult struct {
	Manifest ocispec.Descriptor // in the destination's index.json
	Config   ocispec.Descriptor
	Layer    ocispec.Descriptor
	DiffID   digest.Digest
	Source   ocispec.Descriptor // the OCIv2 manifest exported
}

// Export writes the OCIv2 image nameOrDigest as an ordinary single-layer OCI
// image at dst ("oci:DIR[:TAG]" or "oci-archive:FILE[:TAG]"). The layer is
// a reproducible tar of the whole tree (PAX headers, nanosecond mtimes,
// xattrs, hardlinks, devices); the config is the image's with
// rootfs.diff_ids set to the layer. An oci: directory keeps its other
// images; an image with the same TAG is replaced, as skopeo does.
func Export(ctx context.Context, st ExportStore, nameOrDigest, dst string, opts ExportOptions) (*ExportResult, error) {
	loc, err := ParseLocation(dst)
	if err != nil {
		return nil, err
	}
	if loc.index() >= 0 {
		return nil, fmt.Errorf("exporting to %s: @N selects an image to read, name a tag", loc)
	}
	c, err := ParseCompression(string(opts.Compression))
	if err != nil {
		return nil, err
	}
	desc, err := reader.Resolve(ctx, st, st, nameOrDigest, opts.Platform)
	if err != nil {
		return nil, fmt.Errorf("exporting %s: %w", nameOrDigest, err)
	}
	img, err := reader.Open(ctx, st, desc)
	if err != nil {
		return nil, fmt.Errorf("exporting %s: %w", nameOrDigest, err)
	}
	frames := opts.Frames
	if frames == nil {
		frames = framesource.New(st, nil)
	}
	cr := reader.NewChunkReader(img, frames)

	d, err := createLayout(loc)
	if err != nil {
		return nil, fmt.Errorf("exporting to %s: %w", loc, err)
	}
	raw, err := st.ReadBlob(ctx, img.Manifest.Config.Digest, maxConfigJSON)
	if err != nil {
		return nil, fmt.Errorf("exporting %s: config: %w", nameOrDigest, err)
	}
	docker, err := writer.DockerConfigOf(raw)
	if err != nil {
		return nil, fmt.Errorf("exporting %s: %w", nameOrDigest, err)
	}
	res, err := exportTo(ctx, d, img, docker, cr, c, opts.Progress)
	if err != nil {
		d.abort()
		return nil, fmt.Errorf("exporting %s to %s: %w", nameOrDigest, loc, err)
	}
	res.Source = desc
	return res, nil
}

func exportTo(ctx context.Context, d *dstLayout, img *reader.Image, docker dockerspec.DockerOCIImageConfigExt, cr *reader.ChunkReader,
	c Compression, progress func(ExportProgress)) (*ExportResult, error) {
	li, err := writeLayer(ctx, d, cr, img, c, progress)
	if err != nil {
		return nil, err
	}
	cfgDesc, err := d.putJSON(ocispec.MediaTypeImageConfig, writer.ConfigJSON(exportConfig(&img.Config, li.diffID), docker))
	if err != nil {
		return nil, err
	}
	m := ocispec.Manifest{
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      cfgDesc,
		Layers:      []ocispec.Descriptor{li.desc},
		Annotations: userAnnotations(img.Manifest.Annotations),
	}
	m.SchemaVersion = 2
	mdesc, err := d.putJSON(ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return nil, err
	}
	mdesc.Platform = &ocispec.Platform{
		OS:           img.Config.OS,
		Architecture: img.Config.Architecture,
		Variant:      img.Config.Variant,
		OSVersion:    img.Config.OSVersion,
		OSFeatures:   img.Config.OSFeatures,
	}
	if err := d.finish(mdesc); err != nil {
		return nil, err
	}
	return &ExportResult{Manifest: mdesc, Config: cfgDesc, Layer: li.desc, DiffID: li.diffID}, nil
}

// exportConfig is the OCIv2 config with the one layer: every earlier
// history entry is empty_layer (the OCIv2 image has no layers) and one entry
// for the layer is appended, which Import recognizes and drops.
func exportConfig(src *ocispec.Image, diffID digest.Digest) ocispec.Image {
	cfg := *src
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}
	cfg.History = make([]ocispec.History, 0, len(src.History)+1)
	for _, h := range src.History {
		h.EmptyLayer = true
		cfg.History = append(cfg.History, h)
	}
	cfg.History = append(cfg.History, ocispec.History{
		Created:   src.Created,
		CreatedBy: exportCreatedBy,
		Comment:   exportComment,
	})
	return cfg
}

func removeQuiet(p string) { _ = os.Remove(p) }
