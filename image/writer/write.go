package writer

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
)

// Write stores root as one image manifest (with its config, pack indexes and
// frames) and returns its descriptor. The caller holds a lease.
//
// The manifest digest depends only on root's content and metadata, the
// config and the format (SPEC.md §1.1): frames already in the store are
// reused, never recompressed, and give the same bytes.
func Write(ctx context.Context, st Store, root *Node, opts Options) (*Result, error) {
	return writeImage(ctx, st, root, opts, nil)
}

// WriteImage is Write followed by WriteIndex over its one manifest, in the
// same session of the store's index: the index file the write saves says
// that the image index, the manifest and its pack indexes are done (SPEC.md
// §8.2), so no later command reads them to index the store.
func WriteImage(ctx context.Context, st Store, root *Node, opts Options, annotations map[string]string) (*Result, ocispec.Descriptor, error) {
	var desc ocispec.Descriptor
	res, err := writeImage(ctx, st, root, opts, func(ctx context.Context, s *index.Session, res *Result) error {
		d, err := WriteIndex(ctx, st, []ocispec.Descriptor{res.Manifest}, annotations)
		if err != nil {
			return err
		}
		s.MarkDone(d.Digest)
		desc = d
		return nil
	})
	return res, desc, err
}

// writeImage is Write; then, when not nil, runs in the write's session
// after the manifest is stored.
func writeImage(ctx context.Context, st Store, root *Node, opts Options,
	then func(context.Context, *index.Session, *Result) error) (*Result, error) {
	// Packers stop their workers when ctx ends: cancel on every return.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A config runc would refuse later is refused before anything is written.
	if err := format.ValidateConfig(&opts.Config.Config); err != nil {
		return nil, fmt.Errorf("writing image: %w", err)
	}
	rep := newReporter(opts.Progress)
	defer rep.close()
	rep.setPhase("walk")
	p, err := prepare(root, opts.SourceDateEpoch)
	if err != nil {
		return nil, fmt.Errorf("writing image: %w", err)
	}
	rep.entries.Store(p.entries)
	rep.bytesTotal.Store(p.bytes)
	idx := opts.FrameIndex
	if idx == nil {
		if idx, err = index.New(ctx, st); err != nil {
			return nil, fmt.Errorf("writing image: %w", err)
		}
	}
	if opts.StatCache != nil {
		opts.StatCache.apply(p)
	}
	var res *Result
	err = idx.WithSession(ctx, func(ctx context.Context, s *index.Session) error {
		if res, err = write(ctx, st, s, p, opts, rep); err != nil || then == nil {
			return err
		}
		return then(ctx, s, res)
	})
	if err != nil {
		return nil, fmt.Errorf("writing image: %w", err)
	}
	if opts.StatCache != nil {
		opts.StatCache.record(p)
	}
	return res, nil
}

// write stores the planned image through one session of the store's index:
// the blobs it stores, and so its stats, are its own.
func write(ctx context.Context, st Store, s *index.Session, p *plan, opts Options, rep *reporter) (*Result, error) {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	inFlight := opts.MaxInFlight
	if inFlight <= 0 {
		inFlight = max(minInFlight, inFlightPerWorker*int64(workers))
	}

	rep.setPhase("data")
	refetch := newRefetcher()
	dataTrack := newPackTracker(ctx, s, rep)
	dpk := pack.NewPacker(ctx, pack.Options{
		Store: dataTrack, Fetch: fetchFunc(s, refetch), Workers: dataPackers(workers), OnFrame: dataTrack.onFrame,
	})
	ds := &dataStage{p: p, packer: dpk, workers: workers, budget: newBudget(inFlight), rep: rep, refetch: refetch}
	if err := ds.run(ctx); err != nil {
		return nil, err
	}
	dataPacks, err := dpk.Finish()
	if err != nil {
		return nil, fmt.Errorf("data stream: %w", err)
	}
	if opts.Extents != nil {
		for _, f := range p.files {
			opts.Extents(f.n, f.e.Extents)
		}
	}

	rep.setPhase("trees")
	wrapper, rootID, err := buildTrees(p)
	if err != nil {
		return nil, err
	}
	treeTrack := newPackTracker(ctx, s, rep)
	tpk := pack.NewPacker(ctx, pack.Options{Store: treeTrack, Workers: workers, OnFrame: treeTrack.onFrame})
	if err := addTrees(tpk, p, wrapper, rootID); err != nil {
		return nil, fmt.Errorf("tree stream: %w", err)
	}
	treePacks, err := tpk.Finish()
	if err != nil {
		return nil, fmt.Errorf("tree stream: %w", err)
	}

	rep.setPhase("commit")
	// Virtual frames (SPEC.md §8) keep their new chunks in units the session
	// buffers: they are stored before any pack index names the frames.
	if err := s.Flush(ctx); err != nil {
		return nil, err
	}
	treeLayers, err := packLayers(ctx, st, s, treePacks, treeTrack.finish(), format.MediaTypeTreePack)
	if err != nil {
		return nil, err
	}
	dataLayers, err := packLayers(ctx, st, s, dataPacks, dataTrack.finish(), format.MediaTypeDataPack)
	if err != nil {
		return nil, err
	}
	layers := append(treeLayers, dataLayers...)
	desc, err := writeManifest(ctx, st, opts, rootID, layers)
	if err != nil {
		return nil, err
	}
	// Every frame their pack indexes name went through s.
	s.MarkDone(desc.Digest)
	for _, l := range layers {
		if l.MediaType == format.MediaTypePackIndex {
			s.MarkDone(l.Digest)
		}
	}
	res := &Result{Manifest: desc, Root: rootID, Stats: stats(p, treePacks, dataPacks, rep)}
	res.Stats.StoredNew = s.Written()
	res.Stats.FramesVirtual = s.VirtualFrames()
	return res, nil
}

// dataPackers is the number of data Packer workers for the given readers.
// One more than the cores keeps them busy when an early frame is slow (the
// Packer's in-order window is 2 frames per worker): with as many workers as
// cores the scheduler idled about twice as often on debian-build, and more
// than one extra gained nothing. Each costs memory: a zstd encoder's
// history (2 MiB for frames up to format.FrameMax, format/pack).
func dataPackers(workers int) int { return workers + 1 }

func stats(p *plan, treePacks, dataPacks []format.PackIndex, rep *reporter) Stats {
	s := Stats{
		Entries:      p.entries,
		Files:        int64(len(p.files)),
		LogicalBytes: p.bytes,
		FramesNew:    rep.framesNew.Load(),
		Packs:        int64(len(treePacks) + len(dataPacks)),
	}
	for _, packs := range [][]format.PackIndex{treePacks, dataPacks} {
		for i := range packs {
			s.Frames += int64(len(packs[i].Frames))
			s.StoredBytes += int64(packs[i].PackSize())
		}
	}
	for _, w := range p.files {
		if w.cached {
			s.FilesCached++
		}
		if w.verified {
			s.FilesVerified++
			s.BytesVerified += int64(w.e.Size)
		}
	}
	for i := range dataPacks {
		for _, f := range dataPacks[i].Frames {
			s.Chunks += int64(len(f.Chunks))
		}
	}
	return s
}

// writeManifest stores the config and the manifest (SPEC.md §6.1).
func writeManifest(ctx context.Context, st Store, opts Options, root format.ChunkID,
	layers []ocispec.Descriptor) (ocispec.Descriptor, error) {
	cfg := opts.Config
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}
	if e := opts.SourceDateEpoch; e != nil && (cfg.Created == nil || cfg.Created.After(*e)) {
		t := time.Unix(e.Unix(), 0).UTC()
		cfg.Created = &t
	}
	cfgDesc, err := PutJSON(ctx, st, ocispec.MediaTypeImageConfig, configJSON(cfg, opts.DockerConfig))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("storing config: %w", err)
	}
	ann := map[string]string{
		format.AnnotationFormat: format.FormatVersion,
		format.AnnotationRoot:   root.String(),
	}
	for k, v := range opts.Annotations {
		if _, ok := ann[k]; ok {
			return ocispec.Descriptor{}, fmt.Errorf("annotation %s is reserved", k)
		}
		ann[k] = v
	}
	m := ocispec.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      cfgDesc,
		Layers:      layers,
		Annotations: ann,
	}
	desc, err := PutJSON(ctx, st, ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("storing manifest: %w", err)
	}
	desc.Platform = &ocispec.Platform{
		Architecture: cfg.Architecture,
		OS:           cfg.OS,
		OSVersion:    cfg.OSVersion,
		OSFeatures:   cfg.OSFeatures,
		Variant:      cfg.Variant,
	}
	return desc, nil
}

// WriteIndex stores an OCI image index over manifests (each with Platform)
// and returns its descriptor.
func WriteIndex(ctx context.Context, st store.Writer, manifests []ocispec.Descriptor,
	annotations map[string]string) (ocispec.Descriptor, error) {
	return WriteIndexWith(ctx, st, manifests, nil, annotations)
}

// WriteIndexWith is WriteIndex with other manifests listed after the
// images, as they are: attestation manifests (platform unknown/unknown,
// the way BuildKit's image exporter lists them) are not oci2 images, so
// they do not get the oci2 platform feature. Without others the index is
// byte for byte WriteIndex's.
func WriteIndexWith(ctx context.Context, st store.Writer, manifests, others []ocispec.Descriptor,
	annotations map[string]string) (ocispec.Descriptor, error) {
	if len(manifests) == 0 {
		return ocispec.Descriptor{}, fmt.Errorf("writing image index: no manifests")
	}
	marked := make([]ocispec.Descriptor, len(manifests))
	for i, m := range manifests {
		if m.Platform == nil {
			return ocispec.Descriptor{}, fmt.Errorf("writing image index: manifest %s has no platform", m.Digest)
		}
		p := *m.Platform
		if !slices.Contains(p.OSFeatures, format.PlatformFeature) {
			p.OSFeatures = append(slices.Clone(p.OSFeatures), format.PlatformFeature)
			slices.Sort(p.OSFeatures)
		}
		m.Platform = &p
		marked[i] = m
	}
	manifests = append(marked, others...)
	idx := ocispec.Index{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageIndex,
		Manifests:   manifests,
		Annotations: annotations,
	}
	desc, err := PutJSON(ctx, st, ocispec.MediaTypeImageIndex, idx)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("writing image index: %w", err)
	}
	return desc, nil
}

// PutJSON stores v as JSON (an OCI manifest, index or config) and returns
// its descriptor.
func PutJSON(ctx context.Context, st store.Writer, mediaType string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d := digest.FromBytes(b)
	if err := st.PutBlob(ctx, d, b); err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}, nil
}
