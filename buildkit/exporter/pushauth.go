package exporter

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/util/resolver"
	resolverconfig "github.com/moby/buildkit/util/resolver/config"
)

// sessionTransport is the authenticated transport a push to one repository
// goes through. It is BuildKit's own machinery, as the image exporter's
// push uses it: the registry hosts of buildkitd.toml ([registry."HOST"]:
// TLS, CA, http, mirrors never pushed to) and the client's credentials
// through the build's session (the docker config and credential helpers of
// the machine buildctl or buildx runs on), with the token cache of
// resolver.DefaultPool, isolated per session for push scopes.
type sessionTransport struct {
	host  docker.RegistryHost // scheme, host, TLS client, session authorizer
	match string              // the registry host as request URLs name it
	scope string              // repository:PATH:pull,push
	base  http.RoundTripper
}

// newSessionTransport returns the transport for pushing to repo (a
// normalized repository name, host/path) in session sid. insecure is
// registry.insecure=true: try HTTPS without verifying, fall back to plain
// HTTP, as the image exporter does.
func newSessionTransport(sm *session.Manager, sid string, hosts docker.RegistryHosts, repo string, insecure bool) (*sessionTransport, error) {
	return sessionTransportFor(sm, session.NewGroup(sid), hosts, repo, insecure, true)
}

// NewPullTransport returns the authenticated transport for pulling from
// repo in the build's session group g: buildkitd.toml's hosts (mirrors
// first, as BuildKit's puller tries them) and the client's credentials.
func NewPullTransport(sm *session.Manager, g session.Group, hosts docker.RegistryHosts, repo string) (http.RoundTripper, error) {
	return sessionTransportFor(sm, g, hosts, repo, false, false)
}

func sessionTransportFor(sm *session.Manager, g session.Group, hosts docker.RegistryHosts, repo string, insecure, push bool) (*sessionTransport, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", repo, err)
	}
	domain := reference.Domain(named)
	scope := resolver.ScopeType{Push: push}
	if insecure {
		yes := true
		hosts = resolver.NewRegistryConfig(map[string]resolverconfig.RegistryConfig{
			domain: {Insecure: &yes, PlainHTTP: &yes},
		})
		scope.Insecure = true
	}
	r := resolver.DefaultPool.GetResolver(hosts, named.Name(), scope, sm, g)
	list, err := r.HostsFunc(domain)
	if err != nil {
		return nil, fmt.Errorf("registry hosts of %s: %w", domain, err)
	}
	want, verb, actions := docker.HostCapabilityPush, "push", "pull,push"
	if !push {
		want, verb, actions = docker.HostCapabilityPull, "pull", "pull"
	}
	var host *docker.RegistryHost
	for i := range list {
		if list[i].Capabilities.Has(want) {
			host = &list[i]
			break
		}
	}
	if host == nil {
		return nil, fmt.Errorf("registry %s: no host configured for %s", domain, verb)
	}
	// The registry client names the host as go-containerregistry does
	// (index.docker.io for docker.io); requests to it go to host.Host.
	gr, err := name.NewRepository(named.Name(), name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", repo, err)
	}
	t := &sessionTransport{
		host:  *host,
		match: gr.RegistryStr(),
		scope: "repository:" + reference.Path(named) + ":" + actions,
		base:  http.DefaultTransport,
	}
	if host.Client != nil && host.Client.Transport != nil {
		t.base = host.Client.Transport
	}
	return t, nil
}

// RoundTrip sends req with the session's authorization. A 401 teaches the
// authorizer the registry's challenge (basic or bearer, with the scopes it
// names) and the request is sent once more when its body can be replayed,
// as containerd's resolver does.
func (t *sessionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := t.scoped(req)
	first, err := t.prepare(ctx, req, req.Body)
	if err != nil {
		return nil, err
	}
	resp, err := t.base.RoundTrip(first)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || t.host.Authorizer == nil {
		return resp, err
	}
	if err := t.host.Authorizer.AddResponses(ctx, []*http.Response{resp}); err != nil {
		// No usable credentials or scheme: the 401 goes to the caller,
		// which names it.
		bklog.G(ctx).Debugf("oci2 push: %s %s: 401: %v", req.Method, req.URL.Redacted(), err)
		return resp, nil
	}
	body := req.Body
	switch {
	case body == nil || body == http.NoBody:
	case req.GetBody == nil:
		return resp, nil // the body is spent; the caller's next requests are authorized
	default:
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	resp.Body.Close()
	again, err := t.prepare(ctx, req, body)
	if err != nil {
		return nil, err // a failed token fetch says more than the 401
	}
	return t.base.RoundTrip(again)
}

// prepare clones req for ctx with body, pointed at the configured host
// and authorized.
func (t *sessionTransport) prepare(ctx context.Context, req *http.Request, body io.ReadCloser) (*http.Request, error) {
	r := req.Clone(ctx)
	r.Body = body
	if r.URL.Host == t.match {
		r.URL.Scheme = t.host.Scheme
		r.URL.Host = t.host.Host
		r.Host = ""
	}
	if t.host.Authorizer != nil {
		if err := t.host.Authorizer.Authorize(ctx, r); err != nil {
			if body != nil {
				body.Close()
			}
			return nil, fmt.Errorf("authorizing %s %s: %w", r.Method, r.URL.Redacted(), err)
		}
	}
	return r, nil
}

// scoped returns req's context with the token scopes the request needs:
// push to the target, and pull from the repository a blob is mounted from.
func (t *sessionTransport) scoped(req *http.Request) context.Context {
	ctx := docker.WithScope(req.Context(), t.scope)
	if from := req.URL.Query().Get("from"); from != "" && req.URL.Query().Get("mount") != "" {
		ctx = docker.WithScope(ctx, "repository:"+from+":pull")
	}
	return ctx
}
