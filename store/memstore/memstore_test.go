package memstore_test

import (
	"testing"

	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/memstore"
	"github.com/oci2/oci2/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunLocal(t, func(t *testing.T) store.LocalStore { return memstore.New() })
}
