package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrPlainHTTP is a plain HTTP request to a registry that is not on the
// loopback interface, without Options.Insecure or Options.PlainHTTP.
var ErrPlainHTTP = errors.New("plain HTTP refused")

// baseTransport is the transport below authentication: TLS settings, the
// plain HTTP guard and the counters.
func baseTransport(o Options) http.RoundTripper {
	rt := o.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: o.RootCAs, InsecureSkipVerify: o.Insecure} //nolint:gosec // asked for
		t.MaxConnsPerHost = 2 * o.Jobs
		t.MaxIdleConnsPerHost = 2 * o.Jobs
		rt = t
	}
	// The idle deadline (Options.IdleTimeout) bounds the wait for headers
	// as well as bodies.
	rt = &idleTransport{inner: rt, idle: o.IdleTimeout}
	rt = &httpGuard{inner: rt, allow: o.Insecure || o.PlainHTTP}
	return CountingTransport(rt, o.Stats)
}

// httpGuard refuses plain HTTP to hosts other than loopback unless allowed.
type httpGuard struct {
	inner http.RoundTripper
	allow bool
}

func (g *httpGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allow && !IsLoopback(req.URL.Host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%s: %w to a registry that is not on loopback (use --insecure or --plain-http)",
			req.URL.Host, ErrPlainHTTP)
	}
	return g.inner.RoundTrip(req)
}

// IsLoopback reports whether host (with an optional port) is localhost or a
// loopback address.
func IsLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// authTransport returns the authenticated transport for reg with scopes,
// pinging the registry (with retries on transient failures).
func authTransport(ctx context.Context, reg name.Registry, scopes []string, o Options) (http.RoundTripper, error) {
	if o.AuthTransport != nil {
		return CountingTransport(&idleTransport{inner: o.AuthTransport, idle: o.IdleTimeout}, o.Stats), nil
	}
	auth := o.Auth
	if auth == nil {
		a, err := o.Keychain.Resolve(reg)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", reg.RegistryStr(), err)
		}
		auth = a
	}
	base := transport.NewUserAgent(baseTransport(o), o.UserAgent)
	for attempt := 0; ; attempt++ {
		rt, err := transport.NewWithContext(ctx, reg, auth, base, scopes)
		if err == nil {
			return rt, nil
		}
		var te *transport.Error
		if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
			return nil, fmt.Errorf("registry %s: %w: %w", reg.RegistryStr(), ErrUnauthorized, err)
		}
		if attempt >= o.Retries || !transientSetupError(ctx, err) {
			return nil, fmt.Errorf("registry %s: %w", reg.RegistryStr(), err)
		}
		o.Warn(fmt.Sprintf("registry %s: %v; retrying", reg.RegistryStr(), err))
		if err := sleep(ctx, backoff(o, attempt, 0)); err != nil {
			return nil, err
		}
	}
}

// transientSetupError tells whether a ping or token failure may pass.
func transientSetupError(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, ErrPlainHTTP) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode >= 500 || te.StatusCode == http.StatusTooManyRequests
	}
	return retryableNetError(err)
}
