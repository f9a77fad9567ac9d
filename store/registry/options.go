package registry

import (
	"crypto/x509"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Options configure a Repo. The zero value talks HTTPS with the system's
// roots and the user's docker credentials.
type Options struct {
	// Keychain finds credentials (default authn.DefaultKeychain: the docker
	// config file and its credential helpers). Ignored when Auth is set.
	Keychain authn.Keychain
	// Auth, when set, authenticates every request (basic or token auth, as
	// the registry asks).
	Auth authn.Authenticator
	// AuthTransport, when set, is an already authenticated transport (for
	// instance BuildKit's session-backed resolver): it is used as it is, no
	// credentials are looked up and no ping is made.
	AuthTransport http.RoundTripper
	// Transport is the base transport below authentication (default: a
	// clone of http.DefaultTransport with RootCAs and Insecure applied).
	Transport http.RoundTripper

	// RootCAs replaces the system roots for TLS (a registry with its own CA).
	RootCAs *x509.CertPool
	// Insecure allows plain HTTP to any registry and skips TLS verification.
	// Without it plain HTTP is used only for loopback registries.
	Insecure bool
	// PlainHTTP talks plain HTTP from the start (implies allowing it).
	PlainHTTP bool

	// Push asks for push access (else pull only).
	Push bool
	// MountFrom names other repositories of the same registry blobs may be
	// mounted from; the token asks for pull access to them.
	MountFrom []string

	// Jobs bounds the requests in flight (default 4).
	Jobs int
	// Retries is how many times a request failing with a 5xx, a 429 or a
	// dropped connection is tried again (default 4; negative: none).
	Retries int
	// MinBackoff and MaxBackoff bound the wait before a retry (defaults
	// 200ms and 5s); a Retry-After header is honoured up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// IdleTimeout bounds every wait on the registry (default 60s): a
	// request whose body it stops reading, whose answer does not come, or
	// whose answer's body moves less than 4 KiB in that long is abandoned
	// with ErrStalled, then retried as a dropped connection is.
	IdleTimeout time.Duration
	// ChunkSize > 0 uploads blobs in chunks of that size (raised to the
	// registry's OCI-Chunk-Min-Length); 0 uploads each blob in one PUT.
	ChunkSize int64

	// Stats, when set, counts requests and bytes.
	Stats *Stats
	// Warn receives notable conditions (retries, a registry ignoring
	// Range). It may be called from several goroutines.
	Warn func(msg string)
	// UserAgent is sent with every request.
	UserAgent string
}

const (
	defaultJobs       = 4
	defaultRetries    = 4
	defaultMinBackoff = 200 * time.Millisecond
	defaultMaxBackoff = 5 * time.Second
	// DefaultIdleTimeout is Options.IdleTimeout's default: far above what a
	// working registry takes to answer or to send 4 KiB.
	DefaultIdleTimeout = 60 * time.Second
)

func (o Options) withDefaults() Options {
	if o.Jobs <= 0 {
		o.Jobs = defaultJobs
	}
	if o.Retries == 0 {
		o.Retries = defaultRetries
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = defaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = defaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if o.UserAgent == "" {
		o.UserAgent = "oci2"
	}
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	return o
}
