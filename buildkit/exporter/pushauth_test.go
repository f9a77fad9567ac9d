package exporter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"
)

// fakeAuthorizer learns "Basic ok" from a 401 and records the token scopes
// each authorized request carried in its context.
type fakeAuthorizer struct {
	mu      sync.Mutex
	learned bool
	scopes  [][]string
}

func (a *fakeAuthorizer) Authorize(ctx context.Context, req *http.Request) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.scopes = append(a.scopes, docker.GetTokenScopes(ctx, nil))
	if a.learned {
		req.Header.Set("Authorization", "Basic ok")
	}
	return nil
}

func (a *fakeAuthorizer) AddResponses(ctx context.Context, rs []*http.Response) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.learned = true
	return nil
}

// authServer demands "Basic ok" and echoes the request body.
func authServer(t *testing.T) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Basic ok" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestSessionTransport(t *testing.T) {
	srv, seen := authServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	auth := &fakeAuthorizer{}
	rt := &sessionTransport{
		host:  docker.RegistryHost{Scheme: "http", Host: host, Authorizer: auth},
		match: "registry.example:5000", // as the registry client names it
		scope: "repository:oci2/app:pull,push",
		base:  http.DefaultTransport,
	}
	c := &http.Client{Transport: rt}

	// A body-less request (the client sends http.NoBody) is retried after
	// the 401 taught the authorizer; the URL goes to the configured host.
	req, _ := http.NewRequest(http.MethodHead, "https://registry.example:5000/v2/oci2/app/blobs/sha256:aa", http.NoBody)
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	resp.Body.Close()

	// A replayable body is sent again; a mount asks for pull on its source.
	req, _ = http.NewRequest(http.MethodPost, "http://registry.example:5000/v2/oci2/app/blobs/uploads/?mount=sha256:bb&from=oci2/base", strings.NewReader("payload"))
	resp, err = c.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: %v %v", resp, err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "payload" {
		t.Errorf("body sent after the retry %q", b)
	}
	resp.Body.Close()
	wantScopes := []string{"repository:oci2/app:pull,push", "repository:oci2/base:pull"}
	if last := auth.scopes[len(auth.scopes)-1]; !slices.Equal(last, wantScopes) {
		t.Errorf("mount request scopes %q, want %q", last, wantScopes)
	}

	// A body that cannot be replayed leaves the 401 to the caller.
	auth.learned = false
	req, _ = http.NewRequest(http.MethodPut, "http://registry.example:5000/v2/oci2/app/blobs/uploads/x", io.NopCloser(strings.NewReader("once")))
	resp, err = c.Do(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("PUT with a spent body: %v %v, want the 401", resp, err)
	}
	resp.Body.Close()

	want := []string{
		"HEAD /v2/oci2/app/blobs/sha256:aa ",
		"HEAD /v2/oci2/app/blobs/sha256:aa Basic ok",
		"POST /v2/oci2/app/blobs/uploads/?mount=sha256:bb&from=oci2/base Basic ok",
		"PUT /v2/oci2/app/blobs/uploads/x ",
	}
	if !slices.Equal(*seen, want) {
		t.Errorf("server saw\n%q\nwant\n%q", *seen, want)
	}
}

func TestRepositoryOf(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000/oci2/app:v1":     "127.0.0.1:5000/oci2/app",
		"docker.io/library/hello:latest": "docker.io/library/hello",
		"localhost:5000/a":               "localhost:5000/a",
	} {
		if got, err := repositoryOf(in); err != nil || got != want {
			t.Errorf("repositoryOf(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
