package basesource

import (
	"context"
	"errors"
	"strings"

	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/solver/pb"
	srctypes "github.com/moby/buildkit/source/types"
	"github.com/moby/buildkit/util/progress"
	"github.com/moby/buildkit/util/resolver"

	"github.com/oci2/oci2/chunkstore"
	"github.com/oci2/oci2/reader"
)

// ResolveMetadata answers an image-config request (a Dockerfile's FROM,
// COPY --from, RUN --mount=from=, a docker-image:// named context, a
// # syntax= image) from the store when op names an OCIv2 image it holds:
// no network is used, which is store-first resolution (stock BuildKit asks
// the registry first). ok is false when the request is not for the store;
// the worker then answers as usual. With resolve mode "pull" (--pull) a
// name is left to the registry; a digest is content and is answered from
// the store whenever it holds it.
func (s *Source) ResolveMetadata(ctx context.Context, op *pb.SourceOp, opt sourceresolver.Opt) (_ *sourceresolver.MetaResponse, ok bool, _ error) {
	scheme, ref, found := strings.Cut(op.Identifier, "://")
	if !found || (scheme != srctypes.DockerImageScheme && scheme != Scheme) {
		return nil, false, nil
	}
	io := opt.ImageOpt
	if io == nil {
		io = &sourceresolver.ResolveImageOpt{}
	}
	mode, err := resolver.ParseImageResolveMode(io.ResolveMode)
	if err != nil {
		return nil, false, err
	}
	explicit := scheme == Scheme
	if mode == resolver.ResolveModeForcePull && !explicit && !strings.Contains(ref, "@") {
		return nil, false, nil
	}
	done := progress.OneOff(ctx, "oci2: resolving "+ref+" in the oci2 store")
	b, err := Lookup(ctx, s.opt.Store, ref, io.Platform)
	done(nil)
	if err != nil {
		if !explicit && absent(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	resp := &sourceresolver.ResolveImageResponse{Digest: b.Pin}
	if !io.NoConfig {
		resp.Config = b.Config
	}
	return &sourceresolver.MetaResponse{Op: op, Image: resp}, true, nil
}

// absent is an error saying the store does not hold ref as an OCIv2 image:
// a docker-image request then takes the stock path.
func absent(err error) bool {
	return errors.Is(err, chunkstore.ErrNotFound) || errors.Is(err, reader.ErrNotOCI2)
}
