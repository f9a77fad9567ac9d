package convert

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/framesource"
	"github.com/oci2/oci2/store/index"
)

// ImportProgress is reported while importing (from one goroutine, in order).
type ImportProgress struct {
	// Phase is "layer" while reading layers, then the writer's phases.
	Phase string
	// Layer (1-based) of Layers; LayerBytes of LayerSize compressed bytes read.
	Layer, Layers         int
	LayerBytes, LayerSize int64
	// Write is the writer's progress once the layers are applied.
	Write *writer.Progress
}

// ImportOptions configure Import.
type ImportOptions struct {
	// Tags are the names (as stored, already normalized) to point at the new
	// image index. Empty: the source reference, when the location has one.
	Tags []string
	// Platform selects the image of a multi-platform source; nil takes the
	// only image, else the host's platform.
	Platform *ocispec.Platform
	// TempDir holds the spool of file contents (default os.TempDir()). It
	// needs room for the files of all layers that survive into the image.
	TempDir         string
	SourceDateEpoch *time.Time
	Workers         int
	// Limits bound what the layers may expand to, counting every entry and
	// file byte of every layer, replaced or not, and the path depth (nil:
	// reader.DefaultLimits, SPEC.md §7).
	Limits   *reader.Limits
	Progress func(ImportProgress)
	// Warn receives non-fatal problems (hardlinks to non-regular files
	// copied, aufs metadata skipped).
	Warn func(path string, err error)
}

// ImportResult describes an imported image.
type ImportResult struct {
	Index    ocispec.Descriptor // the OCIv2 image index the tags point at
	Manifest ocispec.Descriptor // its one manifest
	Source   ocispec.Descriptor // the source image manifest
	Tags     []string
	Stats    writer.Stats
}

// Import reads the ordinary OCI image at src ("oci:DIR[:REF]" or
// "oci-archive:FILE[:REF]"), verifies every blob and every layer's diff_id,
// applies the layers in order (whiteouts, opaque directories, hardlinks) and
// writes the resulting filesystem as an OCIv2 image. Nothing is written to
// st until every layer has been read and checked. The caller holds a lease
// on st.
func Import(ctx context.Context, st writer.Store, src string, opts ImportOptions) (*ImportResult, error) {
	loc, err := ParseLocation(src)
	if err != nil {
		return nil, err
	}
	src1, err := loadSource(ctx, loc, opts)
	if err != nil {
		return nil, err
	}
	defer src1.Close()
	wopts := writer.Options{
		Config:          importConfig(src1.config),
		DockerConfig:    src1.docker,
		Annotations:     userAnnotations(src1.manifest.Annotations),
		SourceDateEpoch: opts.SourceDateEpoch,
		Workers:         opts.Workers,
	}
	if opts.Progress != nil {
		layers := len(src1.manifest.Layers)
		wopts.Progress = func(p writer.Progress) {
			opts.Progress(ImportProgress{Phase: p.Phase, Layers: layers, Write: &p})
		}
	}
	// One index serves the write and the check of its result.
	if wopts.FrameIndex, err = index.New(ctx, st); err != nil {
		return nil, fmt.Errorf("importing %s: %w", loc, err)
	}
	// The image index is written with the manifest, in the write's index
	// session (WriteImage), and named only once the image checks.
	res, index, err := writer.WriteImage(ctx, st, src1.root, wopts, nil)
	if err != nil {
		return nil, fmt.Errorf("importing %s: %w", loc, err)
	}
	// What pull checks before it names an image, import checks too: the
	// trees the conversion wrote must walk (SPEC.md §4.2, §4.3, §7).
	img, err := reader.Open(ctx, st, res.Manifest)
	if err == nil {
		err = reader.ValidateTrees(ctx, img, framesource.New(st, wopts.FrameIndex), reader.DefaultLimits)
	}
	if err != nil {
		return nil, fmt.Errorf("importing %s: the converted image is invalid: %w", loc, err)
	}
	tags := opts.Tags
	if len(tags) == 0 && loc.Ref != "" && loc.index() < 0 {
		tags = []string{loc.Ref}
	}
	for _, tag := range tags {
		if err := st.SetRef(ctx, tag, index); err != nil {
			return nil, fmt.Errorf("tagging %s: %w", tag, err)
		}
	}
	return &ImportResult{Index: index, Manifest: res.Manifest, Source: src1.desc, Tags: tags, Stats: res.Stats}, nil
}

// source is a source image read and applied into one tree.
type source struct {
	desc     ocispec.Descriptor // image manifest
	manifest *ocispec.Manifest
	config   *ocispec.Image
	docker   dockerspec.DockerOCIImageConfigExt // the config's Docker-only fields
	root     *writer.Node
	spool    *spool
}

// Close removes the spooled file contents.
func (s *source) Close() error { return s.spool.Close() }

// loadSource resolves loc's image, verifies it and applies its layers.
func loadSource(ctx context.Context, loc Location, opts ImportOptions) (*source, error) {
	l, err := openLayout(loc)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	idx, err := readIndex(l)
	if err != nil {
		return nil, fmt.Errorf("importing %s: %w", loc, err)
	}
	top, err := selectRef(idx, loc)
	if err != nil {
		return nil, fmt.Errorf("importing: %w", err)
	}
	mdesc, m, err := resolveManifest(l, top, opts.Platform)
	if err != nil {
		return nil, fmt.Errorf("importing %s: %w", loc, err)
	}
	cfg, docker, err := readConfig(l, m)
	if err != nil {
		return nil, fmt.Errorf("importing %s: %w", loc, err)
	}
	if opts.Platform != nil && !platformMatches(*opts.Platform, ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}) {
		return nil, fmt.Errorf("importing %s: image is for %s, not %s", loc, platformString(cfg.Platform), platformString(*opts.Platform))
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("importing %s: manifest has %d layers but config has %d diff_ids", loc, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	sp, err := newSpool(opts.TempDir)
	if err != nil {
		return nil, err
	}
	limits := reader.DefaultLimits
	if opts.Limits != nil {
		limits = *opts.Limits
	}
	t := newTree(sp, limits, opts.Warn)
	for i, ld := range m.Layers {
		var fn func(int64)
		if opts.Progress != nil {
			fn = func(n int64) {
				opts.Progress(ImportProgress{Phase: "layer", Layer: i + 1, Layers: len(m.Layers), LayerBytes: n, LayerSize: ld.Size})
			}
		}
		if err := applyLayer(ctx, l, t, i, ld, cfg.RootFS.DiffIDs[i], fn); err != nil {
			sp.Close()
			return nil, fmt.Errorf("importing %s: %w", loc, err)
		}
	}
	return &source{desc: mdesc, manifest: m, config: cfg, docker: docker, root: t.build(), spool: sp}, nil
}

// readConfig reads and checks the image config m names, and returns its
// Docker-only fields (Healthcheck, OnBuild, Shell) too.
func readConfig(l srcLayout, m *ocispec.Manifest) (*ocispec.Image, dockerspec.DockerOCIImageConfigExt, error) {
	var docker dockerspec.DockerOCIImageConfigExt
	switch m.Config.MediaType {
	case ocispec.MediaTypeImageConfig, format.MediaTypeDockerConfig:
	default:
		return nil, docker, fmt.Errorf("config media type %q: not a container image", m.Config.MediaType)
	}
	b, err := readBlob(l, m.Config, maxConfigJSON)
	if err != nil {
		return nil, docker, fmt.Errorf("reading config: %w", err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, docker, fmt.Errorf("parsing config %s: %w", m.Config.Digest, err)
	}
	if cfg.RootFS.Type != "layers" {
		return nil, docker, fmt.Errorf("config %s: rootfs type %q, want \"layers\"", m.Config.Digest, cfg.RootFS.Type)
	}
	if err := format.ValidateConfig(&cfg.Config); err != nil {
		return nil, docker, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if docker, err = writer.DockerConfigOf(b); err != nil {
		return nil, docker, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	return &cfg, docker, nil
}

// History entry Export appends for its single layer; Import drops it again so
// that importing an export gives back the original image.
const (
	exportCreatedBy = "oci2 export"
	exportComment   = "OCIv2 image as one layer"
)

// importConfig is the source config made an OCIv2 config: no diff_ids (the
// writer sets rootfs) and every history entry marked empty_layer, since an
// OCIv2 image has no layers for them to describe.
func importConfig(src *ocispec.Image) ocispec.Image {
	cfg := *src
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}
	cfg.History = nil
	for _, h := range src.History {
		if h.CreatedBy == exportCreatedBy && h.Comment == exportComment {
			continue
		}
		h.EmptyLayer = true
		cfg.History = append(cfg.History, h)
	}
	return cfg
}

// userAnnotations drops the OCIv2 format's own manifest annotations.
func userAnnotations(a map[string]string) map[string]string {
	var out map[string]string
	for k, v := range a {
		if strings.HasPrefix(k, "org.oci2.") {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}
