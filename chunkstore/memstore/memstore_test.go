package memstore_test

import (
	"testing"

	"github.com/oci2/oci2/chunkstore"
	"github.com/oci2/oci2/chunkstore/memstore"
	"github.com/oci2/oci2/chunkstore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunLocal(t, func(t *testing.T) chunkstore.LocalStore { return memstore.New() })
}
