package registry_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/registry"
	"github.com/oci2/oci2/store/registry/registrytest"
	"github.com/oci2/oci2/store/storetest"
)

// TestConformanceTLSBasicAuth runs the suite against a registry with
// htpasswd auth over TLS with its own CA.
func TestConformanceTLSBasicAuth(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{TLS: true, Users: map[string]string{"alice": "s3cret"}})
	auth := authn.FromConfig(authn.AuthConfig{Username: "alice", Password: "s3cret"})
	storetest.Run(t, func(t *testing.T) store.Store {
		return newRepo(t, srv.Host, registry.Options{Auth: auth, RootCAs: srv.CertPool})
	})
}

func TestTLSAndAuthErrors(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{TLS: true, Users: map[string]string{"alice": "s3cret"}})
	ctx := t.Context()
	// No CA: the certificate is refused, not retried, and https is not
	// traded for http.
	_, err := registry.New(ctx, srv.Host+"/xx", registry.Options{Push: true,
		Auth: authn.FromConfig(authn.AuthConfig{Username: "alice", Password: "s3cret"})})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: %v; want a certificate error", err)
	}
	// Wrong password: the registry says 401.
	r, err := registry.New(ctx, srv.Host+"/xx", registry.Options{Push: true, RootCAs: srv.CertPool,
		Auth: authn.FromConfig(authn.AuthConfig{Username: "alice", Password: "wrong"})})
	if err == nil {
		err = r.PutBlob(ctx, digest.FromString("x"), []byte("x"))
	}
	if !errors.Is(err, registry.ErrUnauthorized) {
		t.Errorf("wrong password: %v; want unauthorized", err)
	}
	// Credentials from a docker config file.
	t.Setenv("DOCKER_CONFIG", registrytest.DockerConfig(t, srv.Host, "alice", "s3cret"))
	r, err = registry.New(ctx, srv.Host+"/xx", registry.Options{Push: true, RootCAs: srv.CertPool})
	if err != nil {
		t.Fatal(err)
	}
	b := []byte("from the docker config")
	if err := r.PutBlob(ctx, digest.FromBytes(b), b); err != nil {
		t.Fatal(err)
	}
}

// TestBearerAuth: token auth (a token server in front of the registry).
func TestBearerAuth(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{})
	proxy := registrytest.NewProxy(t, srv.URL())
	proxy.RequireBearer("bob", "pw")
	ctx := t.Context()
	r := newRepo(t, proxy.Host, registry.Options{Auth: authn.FromConfig(authn.AuthConfig{Username: "bob", Password: "pw"}),
		MountFrom: []string{proxy.Host + "/other"}})
	b := bytes.Repeat([]byte("token "), 1000)
	d := digest.FromBytes(b)
	if err := r.PutBlob(ctx, d, b); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadBlob(ctx, d, 0)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("ReadBlob: %v", err)
	}
	scopes := strings.Join(proxy.TokenScopes(), " ")
	for _, want := range []string{"repository:" + r.Path() + ":push,pull", "repository:other:pull"} {
		if !strings.Contains(scopes, want) {
			t.Errorf("token scopes %q lack %q", scopes, want)
		}
	}
	_, err = registry.New(ctx, proxy.Host+"/xx", registry.Options{Auth: authn.FromConfig(authn.AuthConfig{Username: "bob", Password: "no"})})
	if !errors.Is(err, registry.ErrUnauthorized) {
		t.Errorf("bad password: %v; want unauthorized", err)
	}
}
