package basesource

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/moby/buildkit/cache"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/source"
	"github.com/moby/buildkit/source/containerimage"
	srctypes "github.com/moby/buildkit/source/types"

	"github.com/oci2/oci2/buildkit/exporter"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/transfer"
)

// Scheme is the explicit source scheme: "oci2://REF" always takes the oci2
// path (raw LLB users who want no fallback to the stock puller).
const Scheme = "oci2"

// Options configure a Source.
type Options struct {
	// Stock is the worker's own registry image source (base.Worker's
	// ImageSource): everything that is not an OCIv2 image of the store goes
	// to it unchanged.
	Stock *containerimage.Source
	// Store is the daemon's oci2 store.
	Store transfer.PullStore
	// Guard runs fn while the store's garbage collection cannot run, so
	// the blobs of a base being unpacked stay (exporter.State.Read).
	Guard func(fn func() error) error
	// Cache is the worker's cache manager: snapshots are made there.
	Cache cache.Accessor
	// Caches are the worker's oci2 export caches, seeded with every base
	// unpacked (zero: not seeded).
	Caches exporter.Caches

	// WithIndex runs fn with the store's frame index while no collection
	// runs (exporter.State.WithIndex): pulls share it with exports, and
	// unpacks locate chunks of virtual frames with it (the daemon's index
	// files: no scan of the store). Nil: no pulls, bases come from the
	// store only, unpacks run under Guard.
	WithIndex func(ctx context.Context, fn func(*index.Index) error) error
	// Hosts are buildkitd.toml's registries (mirrors, TLS, http).
	Hosts docker.RegistryHosts
	// Remotes, when set, records pulls (mount hints for later pushes).
	Remotes *transfer.Remotes
}

// Source is a BuildKit source for the docker-image and oci2 schemes. For
// docker-image it keeps the stock identifiers (provenance, source policies
// and the worker's metadata type switch see what they expect) and takes
// over only the images the oci2 store holds.
type Source struct {
	opt Options
}

var _ source.Source = (*Source)(nil)

// New returns the source; register it with the worker's source manager.
func New(opt Options) *Source {
	if opt.Guard == nil {
		opt.Guard = func(fn func() error) error { return fn() }
	}
	return &Source{opt: opt}
}

// Schemes are docker-image (replacing the stock registration, which the
// Source wraps) and oci2.
func (s *Source) Schemes() []string { return []string{srctypes.DockerImageScheme, Scheme} }

// Identifier parses ref as the stock source does; an oci2:// ref gets an
// Identifier that says so.
func (s *Source) Identifier(scheme, ref string, attrs map[string]string, platform *pb.Platform) (source.Identifier, error) {
	id, err := s.opt.Stock.Identifier(srctypes.DockerImageScheme, ref, attrs, platform)
	if err != nil || scheme != Scheme {
		return id, err
	}
	iid, ok := id.(*containerimage.ImageIdentifier)
	if !ok {
		return nil, fmt.Errorf("oci2 source: unexpected identifier %T for %q", id, ref)
	}
	return &Identifier{ImageIdentifier: iid}, nil
}

// Resolve makes the instance; it does no I/O. Which path it takes is
// decided by CacheKey.
func (s *Source) Resolve(ctx context.Context, id source.Identifier, sm *session.Manager, vtx solver.Vertex) (source.SourceInstance, error) {
	switch id := id.(type) {
	case *Identifier:
		return &instance{src: s, id: id.ImageIdentifier, sm: sm, explicit: true}, nil
	case *containerimage.ImageIdentifier:
		stock, err := s.opt.Stock.Resolve(ctx, id, sm, vtx)
		if err != nil {
			return nil, err
		}
		return &instance{src: s, id: id, sm: sm, stock: stock}, nil
	default:
		return nil, fmt.Errorf("oci2 source: unexpected identifier %T", id)
	}
}

// Identifier is an oci2://REF source: an image reference that must be an
// OCIv2 image.
type Identifier struct {
	*containerimage.ImageIdentifier
}

// Scheme is oci2.
func (*Identifier) Scheme() string { return Scheme }

// String is the canonical oci2://REF form (source policies match on it).
func (id *Identifier) String() string { return Scheme + "://" + id.Reference.String() }

// withIndex runs fn with the store's frame index (WithIndex), or under
// Guard with none.
func (s *Source) withIndex(ctx context.Context, fn func(*index.Index) error) error {
	if s.opt.WithIndex != nil {
		return s.opt.WithIndex(ctx, fn)
	}
	return s.opt.Guard(func() error { return fn(nil) })
}
