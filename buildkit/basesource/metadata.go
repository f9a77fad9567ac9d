package basesource

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver/pb"
	srctypes "github.com/moby/buildkit/source/types"
	"github.com/moby/buildkit/util/progress"
	"github.com/moby/buildkit/util/resolver"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store"
)

// MetaFunc is the worker's own metadata resolution (the stock path).
type MetaFunc func(ctx context.Context) (*sourceresolver.MetaResponse, error)

// ResolveMetadata answers an image-config request (a Dockerfile's FROM,
// COPY --from, RUN --mount=from=, a docker-image:// named context, a
// # syntax= image). In order:
//  1. the store: a name or digest it holds as an OCIv2 image is answered
//     with no network (store first; stock BuildKit asks the registry
//     first). With resolve mode "pull" (--pull) names skip this step; a
//     digest is content and is always answered from the store.
//  2. the stock path (next). When it fails with NotFound (an OCIv2 index
//     matches no stock platform) or returns an empty image pinned by digest
//     (an OCIv2 manifest by digest: no diff_ids), and the registry has an
//     OCIv2 image there, it is pulled into the store and answered from it.
//
// Everything else is next's answer, unchanged.
func (s *Source) ResolveMetadata(ctx context.Context, op *pb.SourceOp, opt sourceresolver.Opt,
	sm *session.Manager, g session.Group, next MetaFunc) (*sourceresolver.MetaResponse, error) {
	scheme, ref, found := strings.Cut(op.Identifier, "://")
	if !found || (scheme != srctypes.DockerImageScheme && scheme != Scheme) {
		return next(ctx)
	}
	io := opt.ImageOpt
	if io == nil {
		io = &sourceresolver.ResolveImageOpt{}
	}
	mode, err := resolver.ParseImageResolveMode(io.ResolveMode)
	if err != nil {
		return nil, err
	}
	explicit, pinned := scheme == Scheme, strings.Contains(ref, "@")
	answer := func(b *Base) *sourceresolver.MetaResponse {
		resp := &sourceresolver.ResolveImageResponse{Digest: b.Pin}
		if !io.NoConfig {
			resp.Config = b.Config
		}
		return &sourceresolver.MetaResponse{Op: op, Image: resp}
	}
	if mode != resolver.ResolveModeForcePull || pinned {
		done := progress.OneOff(ctx, "oci2: looking up "+ref+" in the oci2 store")
		b, err := Lookup(ctx, s.opt.Store, ref, io.Platform)
		done(nil)
		if err == nil {
			if !pinned {
				// a pulled base in use is the last retention removes
				if err := markManaged(ctx, s.opt.Store, b.Name, false); err != nil {
					return nil, err
				}
			}
			return answer(b), nil
		}
		if !absent(err) {
			return nil, err
		}
	}
	if explicit {
		b, err := s.pull(ctx, ref, io.Platform, sm, g)
		if err != nil {
			return nil, err
		}
		return answer(b), nil
	}
	resp, serr := next(ctx)
	if serr == nil && !(pinned && emptyImage(resp)) {
		return resp, nil
	}
	if serr != nil && !cerrdefs.IsNotFound(serr) {
		return nil, serr
	}
	b, err := s.pull(ctx, ref, io.Platform, sm, g)
	if err != nil {
		if absent(err) {
			return resp, serr // not an OCIv2 image: the stock answer
		}
		return nil, err
	}
	return answer(b), nil
}

// emptyImage is a config with no layers: scratch-like images, and OCIv2
// manifests named by digest (SPEC.md §6.3), which stock BuildKit takes for
// empty bases.
func emptyImage(resp *sourceresolver.MetaResponse) bool {
	if resp == nil || resp.Image == nil || len(resp.Image.Config) == 0 {
		return false
	}
	var img dockerspec.DockerOCIImage
	if json.Unmarshal(resp.Image.Config, &img) != nil {
		return false
	}
	return len(img.RootFS.DiffIDs) == 0
}

// absent is an error saying the store (or the registry) does not hold ref
// as an OCIv2 image: a docker-image request then takes the stock path.
func absent(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, reader.ErrNotOCI2)
}
