package registry_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oci2/oci2/chunkstore"
	"github.com/oci2/oci2/chunkstore/registry"
	"github.com/oci2/oci2/chunkstore/registry/registrytest"
	"github.com/oci2/oci2/chunkstore/storetest"
)

var repoSeq atomic.Int64

// newRepo connects to a fresh repository of the registry at host.
func newRepo(t testing.TB, host string, o registry.Options) *registry.Repo {
	t.Helper()
	o.Push = true
	if o.MinBackoff == 0 {
		o.MinBackoff, o.MaxBackoff = time.Millisecond, 20*time.Millisecond
	}
	name := fmt.Sprintf("%s/test/r%d", host, repoSeq.Add(1))
	r, err := registry.New(t.Context(), name, o)
	if err != nil {
		t.Fatalf("registry.New(%s): %v", name, err)
	}
	return r
}

func TestConformance(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{})
	storetest.Run(t, func(t *testing.T) chunkstore.Store { return newRepo(t, srv.Host, registry.Options{}) })
}

func TestConformanceChunked(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{})
	storetest.Run(t, func(t *testing.T) chunkstore.Store {
		return newRepo(t, srv.Host, registry.Options{ChunkSize: 64 << 10})
	})
}
