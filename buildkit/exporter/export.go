package exporter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/moby/buildkit/cache"
	bkexporter "github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/exporter/containerimage"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/exporter/util/epoch"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/util/progress"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/index"
)

// Response keys added besides the stock containerimage.digest, image.name
// and containerimage.descriptor.
const (
	// ResponseStats is the JSON of []PlatformStats, base64-encoded.
	ResponseStats = "oci2.stats"
)

// AnnotationExported, on the descriptor a ref names in the store's
// index.json, is the time (RFC 3339) the exporter last named it; the
// daemon's retention policy removes the oldest first. It is not part of
// the image (no digest depends on it).
const AnnotationExported = "org.oci2.buildkit.exported"

// PlatformStats are the writer's figures for one platform's manifest.
type PlatformStats struct {
	Platform string       `json:"platform"`
	Manifest string       `json:"manifest"`
	Stats    writer.Stats `json:"stats"`
	Cache    CacheStats   `json:"cache"`
	Tree     TreeStats    `json:"tree"`
	Seconds  float64      `json:"seconds"`
}

// Export writes one manifest per platform of src and an image index over
// them into the store, and names the index. Attestations (provenance,
// SBOM) follow the images in the index as attestation manifests, the way
// the image exporter lists them (writeAttestations).
func (i *instance) Export(ctx context.Context, src *bkexporter.Source, bi bkexporter.ExportBuildInfo) (map[string]string, bkexporter.FinalizeFunc, bkexporter.DescriptorReference, error) {
	st := i.exp.opt.State.Store
	if len(src.Refs) > 0 {
		if _, ok := src.Metadata[exptypes.ExporterPlatformsKey]; !ok {
			return nil, nil, nil, fmt.Errorf("oci2 exporter: unable to export multiple refs, missing platforms mapping")
		}
	}
	plats, err := exptypes.ParsePlatforms(src.Metadata)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("oci2 exporter: %w", err)
	}
	if len(src.Refs) == 0 && len(plats.Platforms) > 1 {
		return nil, nil, nil, fmt.Errorf("oci2 exporter: unable to export multiple platforms without map")
	}

	// Annotations set by the frontend travel in the result metadata.
	fromMeta, _, err := containerimage.ParseAnnotations(src.Metadata)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("oci2 exporter: %w", err)
	}
	ag := containerimage.AnnotationsGroup{}.Merge(fromMeta).Merge(i.attrs.Annotations)

	// The lease keeps the store's gc away from blobs that no ref reaches
	// until SetRef below.
	release, err := st.Lease(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("oci2 exporter: lease on store: %w", err)
	}
	defer release()

	manifests, allStats, err := i.exp.opt.State.writeRetrying(ctx, func(ctx context.Context, idx *index.Index) ([]ocispec.Descriptor, []PlatformStats, error) {
		return i.writeManifests(ctx, src, plats, ag, idx, bi.SessionID)
	})
	if err != nil {
		return nil, nil, nil, err
	}

	atts, err := i.writeAttestations(ctx, src, plats, manifests, bi.SessionID)
	if err != nil {
		return nil, nil, nil, err
	}

	done := progress.OneOff(ctx, "writing image index")
	idx, err := writer.WriteIndexWith(ctx, st, manifests, atts, ag.Platform(nil).Index)
	if err := done(err); err != nil {
		return nil, nil, nil, fmt.Errorf("oci2 exporter: writing index: %w", err)
	}
	if a := ag.Platform(nil).IndexDescriptor; len(a) > 0 {
		idx.Annotations = maps.Clone(a)
	}

	if len(i.attrs.Names) == 0 {
		progressLog(ctx, "no name= given: the image is stored by digest only, unnamed, and the store's gc may remove it")
	}
	refDesc := idx
	refDesc.Annotations = maps.Clone(idx.Annotations)
	if refDesc.Annotations == nil {
		refDesc.Annotations = map[string]string{}
	}
	refDesc.Annotations[AnnotationExported] = time.Now().UTC().Format(time.RFC3339Nano)
	for _, name := range i.attrs.Names {
		done := progress.OneOff(ctx, "naming to "+name)
		err := st.SetRef(ctx, name, refDesc)
		if err := done(err); err != nil {
			return nil, nil, nil, fmt.Errorf("oci2 exporter: naming %s: %w", name, err)
		}
	}

	resp := map[string]string{exptypes.ExporterImageDigestKey: idx.Digest.String()}
	if len(i.attrs.Names) > 0 {
		resp[exptypes.ExporterImageNameKey] = strings.Join(i.attrs.Names, ",")
	}
	if dt, err := json.Marshal(idx); err == nil {
		resp[exptypes.ExporterImageDescriptorKey] = base64.StdEncoding.EncodeToString(dt)
	}
	if dt, err := json.Marshal(allStats); err == nil {
		// base64 of JSON, as containerimage.descriptor: buildctl and buildx
		// decode such values into --metadata-file as JSON objects.
		resp[ResponseStats] = base64.StdEncoding.EncodeToString(dt)
	}
	i.exp.opt.State.exports.Add(1)
	var finalize bkexporter.FinalizeFunc
	if i.attrs.Push {
		// Network work goes in the finalize step, as the image exporter's
		// push: BuildKit runs it after every exporter stored its result.
		finalize = i.pushFinalize(idx, bi.SessionID)
	}
	// No DescriptorReference: the image lives in the oci2 store, not in the
	// worker's content store that build history reads from.
	return resp, finalize, nil, nil
}

// writeManifests writes one manifest per platform with the store's frame
// index.
func (i *instance) writeManifests(ctx context.Context, src *bkexporter.Source, plats exptypes.Platforms,
	ag containerimage.AnnotationsGroup, index *index.Index, sessionID string) ([]ocispec.Descriptor, []PlatformStats, error) {
	var manifests []ocispec.Descriptor
	var allStats []PlatformStats
	for _, p := range plats.Platforms {
		ref, ok := src.FindRef(p.ID)
		if !ok {
			return nil, nil, fmt.Errorf("oci2 exporter: no result for platform %s", p.ID)
		}
		m, ps, err := i.exportPlatform(ctx, src, ref, p, ag, index, sessionID)
		if err != nil {
			if ps != nil { // written, then found stale: what it stored counts
				allStats = append(allStats, *ps)
			}
			return nil, allStats, err
		}
		manifests = append(manifests, m)
		allStats = append(allStats, *ps)
	}
	return manifests, allStats, nil
}

// exportPlatform writes the manifest of one platform's result.
func (i *instance) exportPlatform(ctx context.Context, src *bkexporter.Source, ref cache.ImmutableRef,
	p exptypes.Platform, ag containerimage.AnnotationsGroup, index *index.Index, sessionID string) (ocispec.Descriptor, *PlatformStats, error) {
	start := time.Now()
	ep := i.attrs.Epoch
	if ep == nil {
		var err error
		if ep, err = epoch.ParseSource(src, &p); err != nil {
			return ocispec.Descriptor{}, nil, fmt.Errorf("oci2 exporter: %w", err)
		}
	}
	cfg, err := imageConfig(src.Metadata, p, ep)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}

	tOpen := time.Now()
	tree, err := i.openTree(ctx, ref, sessionID, p.ID)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	defer tree.Close()

	a := ag.Platform(&p.Platform)
	docker, err := dockerConfig(src.Metadata, p)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	opts := writer.Options{
		Config:       cfg,
		DockerConfig: docker,
		Annotations:  a.Manifest,
		Workers:      i.exp.opt.Workers,
	}
	if ep != nil && i.attrs.RewriteTimestamp {
		opts.SourceDateEpoch = ep
	}
	pr := newWriteProgress(ctx, p.ID)
	opts.Progress = pr.update
	opts.Extents = tree.written
	tWrite := time.Now()
	res, img, err := writeChecked(ctx, i.exp.opt.State.Store, index, tree.root, opts)
	pr.close(res, err)
	if err != nil {
		var ps *PlatformStats
		if res != nil { // written, then found stale: what it stored counts
			ps = &PlatformStats{Platform: p.ID, Stats: res.Stats}
		}
		return ocispec.Descriptor{}, ps, fmt.Errorf("oci2 exporter: writing %s: %w", p.ID, err)
	}
	desc := res.Manifest
	plat := p.Platform
	desc.Platform = &plat
	if len(a.ManifestDescriptor) > 0 {
		if desc.Annotations == nil {
			desc.Annotations = map[string]string{}
		}
		maps.Copy(desc.Annotations, a.ManifestDescriptor)
	}
	tree.fillExtents()
	tRemember := time.Now()
	cs := tree.remember(ctx, i.exp.opt.State.Store, img, index)
	bklog.G(ctx).Debugf("oci2 export %s: tree %s, write and check %s, cache %s", p.ID,
		tWrite.Sub(tOpen), tRemember.Sub(tWrite), time.Since(tRemember))
	cs.Verified, cs.VerifiedBytes = res.Stats.FilesVerified, res.Stats.BytesVerified
	return desc, &PlatformStats{
		Platform: p.ID,
		Manifest: desc.Digest.String(),
		Stats:    res.Stats,
		Cache:    cs,
		Tree:     tree.tree,
		Seconds:  time.Since(start).Seconds(),
	}, nil
}
