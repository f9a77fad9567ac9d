package frontend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/solver/pb"
	"github.com/opencontainers/go-digest"
)

// oci2Client is the gateway client the Dockerfile builder sees on a stock
// daemon. Its image resolution recognises OCIv2 images (and answers with a
// config the builder takes for a base with content); its Solve replaces
// every source op of such an image with the fetch-and-unpack subgraph.
type oci2Client struct {
	client.Client

	mu       sync.Mutex
	bases    map[digest.Digest]*base // by the digest the image was resolved to
	fetchOps map[digest.Digest]*base // ops of unpack subgraphs that fetch a blob
}

func newClient(c client.Client) *oci2Client {
	return &oci2Client{Client: c, bases: map[digest.Digest]*base{}, fetchOps: map[digest.Digest]*base{}}
}

// ResolveImageConfig implements client.Client.
func (c *oci2Client) ResolveImageConfig(ctx context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	r, b, err := c.resolve(ctx, ref, opt, func(ctx context.Context, opt sourceresolver.Opt) (resolved, error) {
		ref, d, cfg, err := c.Client.ResolveImageConfig(ctx, ref, opt)
		return resolved{ref, d, cfg}, err
	})
	if err != nil || b == nil {
		return r.ref, r.digest, r.config, err
	}
	cfg, err := b.frontendConfig(c.platform(opt.ImageOpt))
	return pinned(r.ref, b.digest), b.digest, cfg, err
}

// pinned returns ref with digest d: the Dockerfile builder adds the digest
// to a FROM's reference itself, but named contexts use the reference as
// given, and Solve recognises a base's source op by its digest.
func pinned(ref string, d digest.Digest) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	c, err := reference.WithDigest(n, d)
	if err != nil {
		return ref
	}
	return c.String()
}

// ResolveSourceMetadata implements sourceresolver.MetaResolver for
// docker-image sources (named contexts); other sources pass through.
func (c *oci2Client) ResolveSourceMetadata(ctx context.Context, op *pb.SourceOp, opt sourceresolver.Opt) (*sourceresolver.MetaResponse, error) {
	ref, ok := strings.CutPrefix(op.GetIdentifier(), "docker-image://")
	if !ok {
		return c.Client.ResolveSourceMetadata(ctx, op, opt)
	}
	var last *sourceresolver.MetaResponse
	_, b, err := c.resolve(ctx, ref, opt, func(ctx context.Context, opt sourceresolver.Opt) (resolved, error) {
		res, err := c.Client.ResolveSourceMetadata(ctx, op, opt)
		if err != nil {
			return resolved{}, err
		}
		last = res
		if res.Image == nil {
			return resolved{ref: ref}, nil
		}
		return resolved{ref, res.Image.Digest, res.Image.Config}, nil
	})
	if err != nil || b == nil {
		return last, err
	}
	cfg, err := b.frontendConfig(c.platform(opt.ImageOpt))
	if err != nil {
		return nil, err
	}
	return &sourceresolver.MetaResponse{Op: op, Image: &sourceresolver.ResolveImageResponse{Digest: b.digest, Config: cfg}}, nil
}

// Solve implements client.Client: OCIv2 bases in the definition become
// the subgraph that fetches and unpacks them.
func (c *oci2Client) Solve(ctx context.Context, req client.SolveRequest) (*client.Result, error) {
	if req.Definition != nil && c.known() {
		def, err := c.rewrite(ctx, req.Definition)
		if err != nil {
			return nil, err
		}
		if def != req.Definition {
			// Solved here, not lazily after the frontend returns, so
			// that a failed fetch of a pack reaches explain.
			req.Definition, req.Evaluate = def, true
		}
	}
	res, err := c.Client.Solve(ctx, req)
	if err != nil {
		return nil, c.explain(err)
	}
	return res, nil
}

// explain turns the failure of a blob fetch of an unpack subgraph (the
// registry refusing or lacking a pack) into the error that names the
// image as OCIv2 and gives the ways out.
func (c *oci2Client) explain(err error) error {
	var ve *errdefs.VertexError
	if !errors.As(err, &ve) || ve.Vertex == nil {
		return err
	}
	c.mu.Lock()
	b := c.fetchOps[digest.Digest(ve.Digest)]
	c.mu.Unlock()
	if b == nil {
		return err
	}
	// %v, not %w: the gateway returns the status of a gRPC error in the
	// chain as it is, which would drop this message.
	return notBuildable(b.shown, b.digest, fmt.Errorf("fetching its packs through this BuildKit daemon: %v", err))
}

// CurrentFrontend returns the state of the frontend's own image (the
// gateway client's, when it has one: grpcclient reads the definition
// BuildKit mounts into the frontend's container).
func (c *oci2Client) CurrentFrontend() (*llb.State, error) {
	if f, ok := c.Client.(interface{ CurrentFrontend() (*llb.State, error) }); ok {
		return f.CurrentFrontend()
	}
	return nil, nil
}

func (c *oci2Client) known() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.bases) > 0
}

func (c *oci2Client) lookup(d digest.Digest) *base {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bases[d]
}

func (c *oci2Client) remember(b *base) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bases[b.digest] = b
}
