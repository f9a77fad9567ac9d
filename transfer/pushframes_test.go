package transfer_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store/registry/registrytest"
	"github.com/oci2/oci2/transfer"
)

// TestPushMissingFrame: a frame the store lost (neither stored nor held as
// chunks) aborts the push with an error naming it, and the tag is not set.
func TestPushMissingFrame(t *testing.T) {
	srv := registrytest.StartInProcess(t)
	st := newStore(t)
	desc := create(t, st, "example.com/app:v1", v1Files())
	_, frames := imageBlobs(t, st, desc)
	var ids []format.ChunkID
	for id := range frames {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	lost := ids[len(ids)/2]
	hex := strings.TrimPrefix(lost.Digest().String(), "sha256:")
	if err := os.Remove(filepath.Join(st.Dir(), "blobs", "sha256", hex)); err != nil {
		t.Fatal(err)
	}
	ref := srv.Host + "/app:v1"
	_, err := transfer.Push(t.Context(), st, desc, ref, transfer.PushOptions{Options: opts(nil)})
	if err == nil {
		t.Fatal("push succeeded without a frame")
	}
	t.Logf("push: %v", err)
	if want := "frame " + lost.Digest().String() + " is not in the local store"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	if _, err := transfer.Pull(t.Context(), newStore(t), ref, transfer.PullOptions{Options: opts(nil)}); err == nil {
		t.Error("the tag names the image whose push failed")
	}
}
