package transfer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store/registry/registrytest"
	"github.com/oci2/oci2/transfer"
)

// versions is a store holding v1 and v2, and what each is made of.
type versions struct {
	st             storeT
	v1, v2         descT
	blobs1, blobs2 map[digest.Digest]int64
	frames1        map[format.ChunkID]uint64
	frames2        map[format.ChunkID]uint64
}

func makeVersions(t *testing.T) *versions {
	v := &versions{st: newStore(t)}
	v.v1 = create(t, v.st, "example.com/app:v1", v1Files())
	v.v2 = create(t, v.st, "example.com/app:v2", v2Files())
	v.blobs1, v.frames1 = imageBlobs(t, v.st, v.v1)
	v.blobs2, v.frames2 = imageBlobs(t, v.st, v.v2)
	return v
}

// newIn2 returns v2's blobs missing from v1, their count and bytes.
func (v *versions) newIn2() (int, int64, int64) {
	var n int
	var bytes, total int64
	for d, size := range v.blobs2 {
		total += size
		if _, ok := v.blobs1[d]; !ok {
			n++
			bytes += size
		}
	}
	return n, bytes, total
}

func TestPushV2AfterV1(t *testing.T) {
	srv := registrytest.StartInProcess(t)
	v := makeVersions(t)
	newBlobs, newBytes, total := v.newIn2()
	t.Logf("v2: %d blobs, %d bytes; %d blobs (%d bytes) not in v1", len(v.blobs2), total, newBlobs, newBytes)
	for _, withRecord := range []bool{false, true} {
		t.Run(fmt.Sprintf("record=%v", withRecord), func(t *testing.T) {
			var rec *transfer.Remotes
			if withRecord {
				rec = transfer.LoadRemotes(t.TempDir() + "/remotes.json")
			}
			repo := fmt.Sprintf("%s/app%v", srv.Host, withRecord)
			po := transfer.PushOptions{Options: opts(nil), Remotes: rec}
			if _, err := transfer.Push(t.Context(), v.st, v.v1, repo+":v1", po); err != nil {
				t.Fatal(err)
			}
			res, err := transfer.Push(t.Context(), v.st, v.v2, repo+":v2", po)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("push v2: %d requests, %d bytes sent, uploaded %d blobs (%d bytes), %d present",
				res.Requests, res.BytesSent, res.BlobsUploaded, res.BytesUploaded, res.BlobsPresent)
			if res.BlobsUploaded != newBlobs || res.BytesUploaded != newBytes || res.BlobsMounted != 0 {
				t.Errorf("uploaded %d blobs (%d bytes), mounted %d; want %d (%d bytes), 0",
					res.BlobsUploaded, res.BytesUploaded, res.BlobsMounted, newBlobs, newBytes)
			}
			if res.BytesSent > newBytes+64<<10 || newBytes*2 > total {
				t.Errorf("sent %d bytes for %d new of %d", res.BytesSent, newBytes, total)
			}
			// HEADs: all blobs without the record, only the unknown ones with it
			// (+1 HEAD of v1's manifest); POST+PUT per upload; 2 manifests;
			// the ping (https tried first, then http: 2 requests).
			want := int64(len(v.blobs2) + 2*newBlobs + 2 + 2)
			if withRecord {
				want = int64(1 + newBlobs + 2*newBlobs + 2 + 2)
			}
			if res.Requests != want {
				t.Errorf("%d requests, want %d", res.Requests, want)
			}
		})
	}
}

func TestPushMountsFromSibling(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{}) // mounts: distribution
	v := makeVersions(t)
	rec := transfer.LoadRemotes(t.TempDir() + "/remotes.json")
	po := transfer.PushOptions{Options: opts(nil), Remotes: rec}
	if _, err := transfer.Push(t.Context(), v.st, v.v1, srv.Host+"/team-a/app:v1", po); err != nil {
		t.Fatal(err)
	}
	res, err := transfer.Push(t.Context(), v.st, v.v2, srv.Host+"/team-b/app:v2", po)
	if err != nil {
		t.Fatal(err)
	}
	newBlobs, newBytes, _ := v.newIn2()
	shared := len(v.blobs2) - newBlobs
	if res.BlobsMounted != shared || res.BlobsUploaded != newBlobs || res.BytesUploaded != newBytes {
		t.Errorf("mounted %d, uploaded %d (%d bytes); want %d, %d (%d bytes)",
			res.BlobsMounted, res.BlobsUploaded, res.BytesUploaded, shared, newBlobs, newBytes)
	}
	// The copy in team-b pulls back whole.
	b := newStore(t)
	pres, err := transfer.Pull(t.Context(), b, srv.Host+"/team-b/app:v2", transfer.PullOptions{Options: opts(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if pres.Digest != v.v2.Digest {
		t.Fatalf("pulled %s, want %s", pres.Digest, v.v2.Digest)
	}
	mustCheck(t, b)
}

func TestPullV2IntoStoreWithV1(t *testing.T) {
	srv := registrytest.StartInProcess(t)
	v := makeVersions(t)
	for _, tag := range []string{"v1", "v2"} {
		d := v.v1
		if tag == "v2" {
			d = v.v2
		}
		if _, err := transfer.Push(t.Context(), v.st, d, srv.Host+"/app:"+tag, transfer.PushOptions{Options: opts(nil)}); err != nil {
			t.Fatal(err)
		}
	}
	b := newStore(t)
	if _, err := transfer.Pull(t.Context(), b, srv.Host+"/app:v1", transfer.PullOptions{Options: opts(nil)}); err != nil {
		t.Fatal(err)
	}
	res, err := transfer.Pull(t.Context(), b, srv.Host+"/app:v2", transfer.PullOptions{Options: opts(nil)})
	if err != nil {
		t.Fatal(err)
	}
	var newFrames int
	var newBytes, total int64
	for f, size := range v.frames2 {
		total += int64(size)
		if _, ok := v.frames1[f]; !ok {
			newFrames++
			newBytes += int64(size)
		}
	}
	t.Logf("pull v2: %+v", res)
	if res.FramesFetched+res.FramesRebuilt != newFrames || res.FramesPresent != len(v.frames2)-newFrames {
		t.Errorf("fetched %d, rebuilt %d, present %d frames; want %d new, %d present",
			res.FramesFetched, res.FramesRebuilt, res.FramesPresent, newFrames, len(v.frames2)-newFrames)
	}
	if res.BytesReceived > total/2 || res.BytesReceived < newBytes {
		t.Errorf("received %d bytes: %d new of %d", res.BytesReceived, newBytes, total)
	}
	if res.Requests > 20 {
		t.Errorf("%d requests", res.Requests)
	}
	mustCheck(t, b)
}

// TestPullRebuildsFrames: a store holding every chunk of an image in other
// frames rebuilds the image's frames instead of fetching them.
func TestPullRebuildsFrames(t *testing.T) {
	srv := registrytest.StartInProcess(t)
	a := newStore(t)
	desc := create(t, a, "example.com/app:v1", v1Files())
	if _, err := transfer.Push(t.Context(), a, desc, srv.Host+"/app:v1", transfer.PushOptions{Options: opts(nil)}); err != nil {
		t.Fatal(err)
	}
	// The same files in another order: same chunks, other frames.
	shuffled := files{}
	for p, b := range v1Files() {
		shuffled["x/"+reverse(p)] = b
	}
	b := newStore(t)
	create(t, b, "example.com/shuffled:1", shuffled)
	res, err := transfer.Pull(t.Context(), b, srv.Host+"/app:v1", transfer.PullOptions{Options: opts(nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pull: %+v", res)
	if res.FramesRebuilt == 0 || res.FramesFetched > 1 {
		t.Errorf("rebuilt %d frames, fetched %d: want rebuilt > 0 and at most the tree frame fetched", res.FramesRebuilt, res.FramesFetched)
	}
	mustCheck(t, b)
}

func reverse(s string) string {
	r := []byte(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// TestPullResumes: a pull cancelled halfway keeps what it stored; the next
// one fetches only the rest.
func TestPullResumes(t *testing.T) {
	srv := registrytest.StartInProcess(t)
	a := newStore(t)
	desc := create(t, a, "example.com/app:v1", v1Files())
	ref := srv.Host + "/app:v1"
	if _, err := transfer.Push(t.Context(), a, desc, ref, transfer.PushOptions{Options: opts(nil)}); err != nil {
		t.Fatal(err)
	}
	_, frames := imageBlobs(t, a, desc)
	b := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	o := opts(nil)
	o.Registry.Jobs = 1
	o.Progress = func(p transfer.Progress) {
		if p.Phase == "fetch" && p.Done >= int64(len(frames)/2) {
			cancel()
		}
	}
	if _, err := transfer.Pull(ctx, b, ref, transfer.PullOptions{Options: o}); err == nil {
		t.Fatal("cancelled pull succeeded")
	}
	if _, err := b.GetRef(t.Context(), ref); err == nil {
		t.Fatal("cancelled pull set the ref")
	}
	mustCheck(t, b)
	res, err := transfer.Pull(t.Context(), b, ref, transfer.PullOptions{Options: opts(nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second pull: %+v", res)
	if res.FramesPresent < len(frames)/2 || res.FramesFetched+res.FramesPresent != len(frames) {
		t.Errorf("second pull: %d present, %d fetched of %d", res.FramesPresent, res.FramesFetched, len(frames))
	}
	mustCheck(t, b)
}
