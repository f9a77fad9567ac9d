package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBaseExportSeeded: the type=oci2 export of FROM an OCIv2 base + one
// COPY reuses the base's work. Unpacking the base seeded the exporter's
// tree and files caches, so the first export walks only the COPY's layer
// and reads only its file. The image is the one a cold export of the same
// result gives (a restarted daemon without its files cache: every layer
// walked, every file read and chunked).
func TestBaseExportSeeded(t *testing.T) {
	d, _, _ := startStoreBaseDaemon(t)
	ctx := dockerfileContext(t, "FROM t/base\nCOPY app.txt /srv/app.txt\n", map[string]string{"app.txt": "app\n"})
	epoch := []string{"--opt", "build-arg:SOURCE_DATE_EPOCH=1700000000"}

	m, r := d.buildctl(t, nil, ctx, "type=oci2,name=t/seeded", epoch...)
	if r.Err != nil {
		t.Fatalf("build: %v\n%s", r.Err, clip(r.Stderr))
	}
	if !strings.Contains(r.Stderr, "oci2: export caches seeded") {
		t.Errorf("no seeding shown under FROM:\n%s", clip(r.Stderr))
	}
	seeded, seededIndex := statsOf(t, m)[0], digestOf(t, m)
	t.Logf("seeded export: tree %+v, cache %+v, %.2fs", seeded.Tree, seeded.Cache, seeded.Seconds)
	// The base's layer comes from the tree cache; the COPY's upper
	// directory holds srv/ and srv/app.txt, read with the root's metadata.
	if seeded.Tree.Layers != 2 || seeded.Tree.LayersCached != 1 || seeded.Tree.Walked > 3 {
		t.Errorf("seeded export: tree %+v, want the base's layer from the cache and at most 3 entries walked", seeded.Tree)
	}
	// Every file of the base has its extents from the files cache: only
	// app.txt is read.
	if seeded.Cache.Files < 10 || seeded.Cache.Hits != seeded.Cache.Files-1 {
		t.Errorf("seeded export: %d of %d files from the files cache, want all but app.txt",
			seeded.Cache.Hits, seeded.Cache.Files)
	}

	// A cold export of the same result: the build is cached (no unpack, so
	// no seeding), the tree cache is gone with the process and the files
	// cache with its file.
	d.stop()
	if err := os.RemoveAll(filepath.Join(d.root, "oci2-filescache")); err != nil {
		t.Fatal(err)
	}
	d.start(t)
	m, r = d.buildctl(t, nil, ctx, "type=oci2,name=t/cold", epoch...)
	if r.Err != nil {
		t.Fatalf("cold build: %v\n%s", r.Err, clip(r.Stderr))
	}
	if strings.Contains(r.Stderr, "oci2: unpacking") {
		t.Fatalf("the cold build unpacked the base again:\n%s", clip(r.Stderr))
	}
	cold := statsOf(t, m)[0]
	t.Logf("cold export: tree %+v, cache %+v, %.2fs", cold.Tree, cold.Cache, cold.Seconds)
	if cold.Cache.Hits != 0 || cold.Tree.LayersCached != 0 || cold.Tree.Walked <= seeded.Cache.Files {
		t.Errorf("cold export: tree %+v, cache %+v: not cold", cold.Tree, cold.Cache)
	}
	if cold.Manifest != seeded.Manifest || digestOf(t, m) != seededIndex {
		t.Errorf("seeded export %s (index %s), cold export %s (index %s): the images differ",
			seeded.Manifest, seededIndex, cold.Manifest, digestOf(t, m))
	}
}
