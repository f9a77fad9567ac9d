package transfer_test

import (
	"testing"

	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/registry/registrytest"
	"github.com/oci2/oci2/transfer"
)

// TestPullPushUseIndexFiles: Pull and Push given no index use the local
// store's index files: on a store whose files cover it, their scans read
// nothing (before, Pull's fallback scanned every image in memory), and the
// pull still finds the frames the store holds.
func TestPullPushUseIndexFiles(t *testing.T) {
	srv, _, v2 := pushedV2(t)

	b := newStore(t)
	create(t, b, "example.com/app:v1", v1Files())
	warm, err := index.New(t.Context(), b) // takes in v1's manifest
	if err != nil {
		t.Fatal(err)
	}
	warm.Close()

	before := index.ProcessScanStats()
	res, err := transfer.Pull(t.Context(), b, srv.Host+"/app:v2", transfer.PullOptions{Options: opts(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if got := index.ProcessScanStats(); got != before {
		t.Errorf("pull into a store with index files scanned: %+v, then %+v", before, got)
	}
	if res.FramesPresent == 0 {
		t.Errorf("pull: no frame found present: %+v", res)
	}

	warm, err = index.New(t.Context(), b) // takes in v2's manifest
	if err != nil {
		t.Fatal(err)
	}
	warm.Close()
	before = index.ProcessScanStats()
	if _, err := transfer.Push(t.Context(), b, v2, srv.Host+"/copy:v2", transfer.PushOptions{Options: opts(nil)}); err != nil {
		t.Fatal(err)
	}
	if got := index.ProcessScanStats(); got != before {
		t.Errorf("push from a store with index files scanned: %+v, then %+v", before, got)
	}
	mustCheck(t, b)
}

// TestPullIndexesPresentFrames: a pull's index file says the image it
// pulled is done (SPEC.md §8.2), so it holds every frame of it, those the
// pull found stored without the index's help included (blobs a killed pull
// left: stored, never indexed). oci2 check verifies that a pack index the
// files say is done has its frames in them; a second pull scans nothing.
func TestPullIndexesPresentFrames(t *testing.T) {
	srv, a, v2 := pushedV2(t)
	b := newStore(t)
	_, frames := imageBlobs(t, a, v2)
	for id := range frames {
		data, err := a.ReadBlob(t.Context(), id.Digest(), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.PutBlob(t.Context(), id.Digest(), data); err != nil {
			t.Fatal(err)
		}
	}
	res, err := transfer.Pull(t.Context(), b, srv.Host+"/app:v2", transfer.PullOptions{Options: opts(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if res.FramesPresent != len(frames) {
		t.Errorf("pull found %d frames present, want all %d", res.FramesPresent, len(frames))
	}
	mustCheck(t, b)
	before := index.ProcessScanStats()
	if _, err := transfer.Pull(t.Context(), b, srv.Host+"/app:v2", transfer.PullOptions{Options: opts(nil)}); err != nil {
		t.Fatal(err)
	}
	if got := index.ProcessScanStats(); got != before {
		t.Errorf("a second pull scanned: %+v, then %+v", before, got)
	}
}

// pushedV2 is a registry serving app:v2, pushed from store a.
func pushedV2(t *testing.T) (*registrytest.Server, storeT, descT) {
	t.Helper()
	srv := registrytest.StartInProcess(t)
	a := newStore(t)
	v2 := create(t, a, "example.com/app:v2", v2Files())
	if _, err := transfer.Push(t.Context(), a, v2, srv.Host+"/app:v2", transfer.PushOptions{Options: opts(nil)}); err != nil {
		t.Fatal(err)
	}
	return srv, a, v2
}
