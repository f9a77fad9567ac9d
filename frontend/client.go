package frontend

import (
	"context"
	"strings"
	"sync"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/pb"
	"github.com/opencontainers/go-digest"
)

// oci2Client is the gateway client the Dockerfile builder sees on a stock
// daemon. Its image resolution recognises OCIv2 images (and answers with a
// config the builder takes for a base with content); its Solve replaces
// every source op of such an image with the fetch-and-unpack subgraph.
type oci2Client struct {
	client.Client

	mu    sync.Mutex
	bases map[digest.Digest]*base // by the digest the image was resolved to
}

func newClient(c client.Client) *oci2Client {
	return &oci2Client{Client: c, bases: map[digest.Digest]*base{}}
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
	return r.ref, b.digest, cfg, err
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
		req.Definition = def
	}
	return c.Client.Solve(ctx, req)
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
