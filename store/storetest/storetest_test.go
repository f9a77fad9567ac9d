package storetest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/memstore"
	"github.com/oci2/oci2/store/storetest"
)

// registryLike is a store without listing, deletion or leases, as a
// registry backend may be; the suite must still pass, skipping those parts.
type registryLike struct{ *memstore.Store }

func (registryLike) ListBlobs(context.Context, func(store.Info) error) error {
	return errors.ErrUnsupported
}
func (registryLike) DeleteBlob(context.Context, digest.Digest) error { return errors.ErrUnsupported }
func (registryLike) Lease(context.Context) (func(), error)           { return nil, errors.ErrUnsupported }
func (registryLike) Exclusive(context.Context, bool) (func(), error) {
	return nil, errors.ErrUnsupported
}

func TestSuiteWithoutOptionalRoles(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return registryLike{memstore.New()} })
}
