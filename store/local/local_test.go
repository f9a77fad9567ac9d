package local

import (
	"context"
	"os"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/storetest"
)

// corruptible adds storetest.Corrupter to a Store by rewriting blob files.
type corruptible struct{ *Store }

func (c corruptible) Corrupt(ctx context.Context, d digest.Digest, data []byte) error {
	p := c.blobPath(d)
	if err := os.Chmod(p, 0o644); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o444)
}

func TestConformance(t *testing.T) {
	storetest.RunLocal(t, func(t *testing.T) store.LocalStore {
		st, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return corruptible{st}
	})
}
