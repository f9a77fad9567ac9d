package registry

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
)

// Repo is one repository of a registry. It implements store.Reader,
// Writer, RangeReader and Refs; Lister and Leaser answer
// errors.ErrUnsupported. It is safe for concurrent use.
//
// Blobs are read from the blob endpoint and, when the registry does not know
// them as blobs, from the manifest endpoint (images' manifests and indexes
// live there). Blobs written with PutBlob/WriteBlob are uploaded as blobs;
// manifests and indexes are stored with PutManifest.
type Repo struct {
	name    string // normalized name: docker.io/library/hello
	reg     name.Registry
	path    string // repository path on the registry: library/hello
	scheme  string
	c       *client
	o       Options
	isMan   sync.Map // digest -> true: known to live on the manifest endpoint
	noRange atomic.Bool

	emptyOnce sync.Mutex
	emptyDone bool
}

var (
	_ store.Store       = (*Repo)(nil)
	_ store.RangeReader = (*Repo)(nil)
)

// New connects to repository (host[/path], no tag or digest; a docker
// familiar name like "hello" means docker.io/library/hello), asking for the
// access o.Push requests.
func New(ctx context.Context, repository string, o Options) (*Repo, error) {
	o = o.withDefaults()
	named, err := reference.ParseNormalizedNamed(repository)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", repository, err)
	}
	if !reference.IsNameOnly(named) {
		return nil, fmt.Errorf("repository %q: want a name without tag or digest", repository)
	}
	var nopts []name.Option
	if o.Insecure || o.PlainHTTP {
		nopts = append(nopts, name.Insecure)
	}
	ggRepo, err := name.NewRepository(named.Name(), nopts...)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", repository, err)
	}
	scopes := []string{ggRepo.Scope(transport.PullScope)}
	if o.Push {
		scopes[0] = ggRepo.Scope(transport.PushScope)
	}
	for _, m := range o.MountFrom {
		mr, err := name.NewRepository(m, nopts...)
		if err != nil {
			return nil, fmt.Errorf("mount source %q: %w", m, err)
		}
		if mr.RegistryStr() == ggRepo.RegistryStr() && mr.RepositoryStr() != ggRepo.RepositoryStr() {
			scopes = append(scopes, mr.Scope(transport.PullScope))
		}
	}
	rt, err := authTransport(ctx, ggRepo.Registry, scopes, o)
	if err != nil {
		return nil, err
	}
	r := &Repo{
		name:   named.Name(),
		reg:    ggRepo.Registry,
		path:   ggRepo.RepositoryStr(),
		scheme: "https",
		o:      o,
	}
	if o.PlainHTTP {
		r.scheme = "http"
	}
	r.c = newClient(ggRepo.RegistryStr(), rt, o)
	return r, nil
}

// Name is the repository's normalized name (docker.io/library/hello).
func (r *Repo) Name() string { return r.name }

// Registry is the registry's host (as used in URLs).
func (r *Repo) Registry() string { return r.reg.RegistryStr() }

// Path is the repository path on the registry (library/hello).
func (r *Repo) Path() string { return r.path }

// IgnoresRange reports whether the registry was seen answering a range
// request with the whole blob.
func (r *Repo) IgnoresRange() bool { return r.noRange.Load() }

// url returns the URL of /v2/<repo>/<rest>.
func (r *Repo) url(rest string) string {
	return r.scheme + "://" + r.reg.RegistryStr() + "/v2/" + r.path + "/" + rest
}

func (r *Repo) blobURL(d digest.Digest) string { return r.url("blobs/" + d.String()) }
func (r *Repo) manifestURL(ref string) string  { return r.url("manifests/" + ref) }
func (r *Repo) uploadsURL(q url.Values) string {
	u := r.url("blobs/uploads/")
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// resolveLocation resolves a Location header against the request URL.
func resolveLocation(base, loc string) (string, error) {
	if loc == "" {
		return "", fmt.Errorf("registry answered without a Location header")
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	l, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("bad Location %q: %w", loc, err)
	}
	return b.ResolveReference(l).String(), nil
}

// withQuery adds key=value to the query of u (an upload location may carry
// its own query, distribution's _state for instance).
func withQuery(u, key, value string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", err
	}
	q := p.Query()
	q.Set(key, value)
	p.RawQuery = q.Encode()
	return p.String(), nil
}

// MountPath returns the path of repository on r's registry when it is
// another repository of the same registry (a candidate to mount from).
func (r *Repo) MountPath(repository string) (string, bool) {
	named, err := reference.ParseNormalizedNamed(repository)
	if err != nil {
		return "", false
	}
	gr, err := name.NewRepository(named.Name(), name.Insecure)
	if err != nil || gr.RegistryStr() != r.reg.RegistryStr() {
		return "", false
	}
	return gr.RepositoryStr(), !strings.EqualFold(gr.RepositoryStr(), r.path)
}
