package basesource

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/session"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/buildkit/exporter"
	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/internal/refname"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/registry"
	"github.com/oci2/oci2/transfer"
)

// pull fetches ref from its registry into the store, when it is an OCIv2
// image, and looks it up there. Only what the store lacks crosses the
// network (transfer.Pull: frames held are kept, frames whose chunks are
// held are rebuilt, the rest fetched with coalesced range requests), with
// buildkitd.toml's registry hosts and the client's credentials. An image
// that is not OCIv2 is not pulled: the error wraps reader.ErrNotOCI2.
func (s *Source) pull(ctx context.Context, ref string, platform *ocispec.Platform, sm *session.Manager, g session.Group) (*Base, error) {
	if s.opt.WithIndex == nil {
		return nil, fmt.Errorf("%s: pulling OCIv2 bases is not configured: %w", ref, store.ErrNotFound)
	}
	r, err := refname.Parse(ref)
	if err != nil {
		return nil, err
	}
	if r.Name == "" {
		return nil, fmt.Errorf("%s: a bare digest names no registry: %w", ref, store.ErrNotFound)
	}
	named, err := reference.ParseNormalizedNamed(r.Name)
	if err != nil {
		return nil, err
	}
	rt, err := exporter.NewPullTransport(sm, g, s.opt.Hosts, named.Name())
	if err != nil {
		return nil, err
	}
	ro := registry.Options{AuthTransport: rt, UserAgent: "oci2-buildkit"}
	if err := probeOCIv2(ctx, named.Name(), r, ro); err != nil {
		return nil, err
	}
	p := newPullProgress(ctx, ref)
	var res *transfer.Result
	err = s.opt.WithIndex(ctx, func(idx *index.Index) error {
		var err error
		res, err = transfer.Pull(ctx, s.opt.Store, r.String(), transfer.PullOptions{
			Options: transfer.Options{Registry: ro, Progress: p.update, Warn: p.log},
			Name:    r.String(),
			Index:   idx,
			Remotes: s.opt.Remotes,
		})
		return err
	})
	p.close(res, err)
	if err != nil {
		return nil, err
	}
	if err := markManaged(ctx, s.opt.Store, r.String(), true); err != nil {
		return nil, err
	}
	return Lookup(ctx, s.opt.Store, ref, platform)
}

// probeOCIv2 reads the root manifest r names and tells whether it is an
// OCIv2 image (an index whose manifests carry the org.oci2.v1 platform
// feature, or a manifest with the org.oci2.format annotation), so that an
// ordinary image is never pulled into the oci2 store. It costs one manifest
// request, which transfer.Pull makes again.
func probeOCIv2(ctx context.Context, repo string, r refname.Ref, ro registry.Options) error {
	rp, err := registry.New(ctx, repo, ro)
	if err != nil {
		return err
	}
	tag := r.Digest.String()
	if r.Digest == "" {
		named, err := reference.ParseNormalizedNamed(r.Name)
		if err != nil {
			return err
		}
		tag = reference.TagNameOnly(named).(reference.Tagged).Tag()
	}
	_, b, err := rp.GetManifest(ctx, tag)
	if err != nil {
		return fmt.Errorf("%s: %w", r, err)
	}
	var m struct {
		Manifests   []ocispec.Descriptor `json:"manifests"`
		Annotations map[string]string    `json:"annotations"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: manifest: %w", r, err)
	}
	if _, ok := m.Annotations[format.AnnotationFormat]; ok {
		return nil
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && slices.Contains(d.Platform.OSFeatures, format.PlatformFeature) {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", r, reader.ErrNotOCI2)
}
