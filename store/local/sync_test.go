package local

import (
	"fmt"
	"testing"
)

func TestPendingSync(t *testing.T) {
	var p pending
	if _, _, _, any := p.take(); any {
		t.Fatal("empty pending reports writes")
	}
	p.wrote("/s/blobs/sha256/a", "/s/blobs/sha256")
	p.wrote("", "/s/oci2/units")
	files, dirs, overflow, any := p.take()
	if !any || overflow || len(files) != 1 || files[0] != "/s/blobs/sha256/a" || len(dirs) != 2 {
		t.Fatalf("take: files %v dirs %v overflow %v any %v", files, dirs, overflow, any)
	}
	if _, _, _, any := p.take(); any {
		t.Fatal("take did not clear")
	}
	for i := range syncFilesMax + 1 {
		p.wrote(fmt.Sprintf("/s/blobs/sha256/%d", i), "/s/blobs/sha256")
	}
	files, dirs, overflow, _ = p.take()
	if !overflow || files != nil || len(dirs) != 1 {
		t.Fatalf("past syncFilesMax: files %d overflow %v dirs %v, want syncfs", len(files), overflow, dirs)
	}
	// a failed Sync puts its work back, as a syncfs
	p.restore([]string{"/s/blobs/sha256/x"}, []string{"/s/blobs/sha256"}, false)
	if _, dirs, overflow, any := p.take(); !any || !overflow || len(dirs) != 1 {
		t.Fatalf("after restore: dirs %v overflow %v any %v", dirs, overflow, any)
	}
}
