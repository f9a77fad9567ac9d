package transfer_test

import (
	"testing"

	"github.com/oci2/oci2/store/registry/registrytest"
	"github.com/oci2/oci2/transfer"
)

func TestPushPullRoundTrip(t *testing.T) {
	srv := registrytest.StartInProcess(t)
	a := newStore(t)
	desc := create(t, a, "example.com/app:v1", v1Files())
	ref := srv.Host + "/app:v1"
	res, err := transfer.Push(t.Context(), a, desc, ref, transfer.PushOptions{Options: opts(nil)})
	if err != nil {
		t.Fatal(err)
	}
	blobs, frames := imageBlobs(t, a, desc)
	if res.BlobsUploaded != len(blobs) || res.BlobsPresent != 0 {
		t.Errorf("push: %d blobs uploaded, %d present; want %d, 0", res.BlobsUploaded, res.BlobsPresent, len(blobs))
	}
	t.Logf("push: %+v", res)

	b := newStore(t)
	pres, err := transfer.Pull(t.Context(), b, ref, transfer.PullOptions{Options: opts(nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pull: %+v", pres)
	if pres.Digest != desc.Digest {
		t.Fatalf("pulled %s, pushed %s", pres.Digest, desc.Digest)
	}
	if pres.FramesFetched != len(frames) || pres.FramesPresent != 0 {
		t.Errorf("pull: %d frames fetched, %d present; want %d, 0", pres.FramesFetched, pres.FramesPresent, len(frames))
	}
	got, err := b.GetRef(t.Context(), ref)
	if err != nil || got.Digest != desc.Digest {
		t.Fatalf("ref %s: %v %v", ref, got, err)
	}
	mustCheck(t, b)
}
