package tests

import (
	"strings"
	"testing"
)

// TestContainerdLazyRequests: importing an image from its registry and
// running it asks the registry for its manifest once. The import fetches
// the metadata into the store; the snapshotter's mount opens it from
// there and goes to the registry only for data frames (it repeats neither
// the manifest fetch nor the metadata's validation).
func TestContainerdLazyRequests(t *testing.T) {
	l := startLazyCtd(t)
	pushed := len(l.proxy.Requests())
	l.importImage(t, l.ref)
	if out := l.runOut(t, "req1"); !strings.Contains(out, helloOut) {
		t.Fatalf("ctr run: %q, want %q", out, helloOut)
	}
	reqs := l.proxy.Requests()[pushed:]
	t.Logf("import + run: %d requests\n%s", len(reqs), strings.Join(reqs, "\n"))
	manifests := map[string]int{}
	blobs := 0
	for _, r := range reqs {
		switch {
		case strings.Contains(r, "/manifests/"):
			manifests[r]++
		case strings.Contains(r, "/blobs/"):
			blobs++
		}
	}
	if len(manifests) == 0 {
		t.Fatal("no manifest requests: the image did not come from the registry")
	}
	for r, n := range manifests {
		if n != 1 {
			t.Errorf("%s: %d times, want once (the import's; the mount reads the store)", r, n)
		}
	}
	if blobs == 0 {
		t.Errorf("no blob requests: the run fetched no data, the image was not lazy")
	}
}
