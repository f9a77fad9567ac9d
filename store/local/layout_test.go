package local

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/store"
)

func mustOpen(t *testing.T, dir string) *Store {
	t.Helper()
	st, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return st
}

func readIndexFile(t *testing.T, dir string) ocispec.Index {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	return idx
}

func TestOpenCreatesLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "store")
	st := mustOpen(t, dir)
	if st.Dir() != dir {
		t.Errorf("Dir() = %s, want %s", st.Dir(), dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil || string(b) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout = %q, %v", b, err)
	}
	idx := readIndexFile(t, dir)
	if idx.SchemaVersion != 2 || idx.MediaType != ocispec.MediaTypeImageIndex || idx.Manifests == nil || len(idx.Manifests) != 0 {
		t.Fatalf("new index.json = %+v", idx)
	}
	for _, d := range []string{"blobs/sha256", "oci2/ingest"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Fatalf("%s: %v", d, err)
		}
	}
	mustOpen(t, dir) // reopening is fine
}

func TestOpenRefusesOthers(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if _, err := Open(file); err == nil {
		t.Error("Open of a regular file succeeded")
	}
	other := filepath.Join(base, "home")
	os.MkdirAll(filepath.Join(other, "Documents"), 0o755)
	_, err := Open(other)
	if err == nil || !strings.Contains(err.Error(), "not an OCI image layout") || !strings.Contains(err.Error(), "Documents") {
		t.Errorf("Open of a non-layout dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, "blobs")); err == nil {
		t.Error("refused directory was modified")
	}
	future := filepath.Join(base, "future")
	os.MkdirAll(future, 0o755)
	os.WriteFile(filepath.Join(future, "oci-layout"), []byte(`{"imageLayoutVersion":"2.0.0"}`), 0o644)
	if _, err := Open(future); err == nil || !strings.Contains(err.Error(), "2.0.0") {
		t.Errorf("Open of an unsupported layout version: %v", err)
	}
}

func TestOpenResumesInterruptedCreation(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
	os.MkdirAll(filepath.Join(dir, "oci2"), 0o755)
	mustOpen(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		t.Fatal(err)
	}
}

// TestForeignLayout adopts a layout written by another tool: its unnamed
// entries survive ref updates and are not refs.
func TestForeignLayout(t *testing.T) {
	dir := t.TempDir()
	blob := []byte(`{"schemaVersion":2}`)
	d := digest.FromBytes(blob)
	os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
	os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), blob, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	unnamed := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(blob))}
	named := unnamed
	named.Annotations = map[string]string{ocispec.AnnotationRefName: "v1", "x": "y"}
	idx := emptyIndex()
	idx.Manifests = []ocispec.Descriptor{named, unnamed}
	b, _ := json.Marshal(idx)
	os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644)

	st := mustOpen(t, dir)
	ctx := t.Context()
	refs, err := st.ListRefs(ctx)
	if err != nil || len(refs) != 1 || refs[0].Name != "v1" || !reflect.DeepEqual(refs[0].Descriptor.Annotations, map[string]string{"x": "y"}) {
		t.Fatalf("ListRefs = %+v, %v", refs, err)
	}
	if err := st.SetRef(ctx, "example.com/a:b", unnamed); err != nil {
		t.Fatal(err)
	}
	got := readIndexFile(t, dir).Manifests
	want := []ocispec.Descriptor{unnamed, {MediaType: unnamed.MediaType, Digest: d, Size: unnamed.Size,
		Annotations: map[string]string{ocispec.AnnotationRefName: "example.com/a:b"}}, named}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("index.json manifests =\n%+v\nwant\n%+v", got, want)
	}
}

func TestIndexCorrupt(t *testing.T) {
	dir := t.TempDir()
	st := mustOpen(t, dir)
	os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{"schemaVersion":2,"manif`), 0o644)
	if _, err := st.ListRefs(t.Context()); err == nil || !strings.Contains(err.Error(), "index.json") {
		t.Fatalf("ListRefs on a truncated index.json: %v", err)
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("Open with a truncated index.json succeeded")
	}
}

func TestBlobFilesAndUsage(t *testing.T) {
	dir := t.TempDir()
	st := mustOpen(t, dir)
	ctx := t.Context()
	var total int64
	for i := range 5 {
		b := []byte(strings.Repeat("x", 100*i+1))
		total += int64(len(b))
		d := digest.FromBytes(b)
		if err := st.PutBlob(ctx, d, b); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, "blobs", "sha256", d.Encoded()))
		if err != nil || fi.Size() != int64(len(b)) || fi.Mode().Perm() != 0o444 {
			t.Fatalf("blob file: %v, %v", fi, err)
		}
	}
	// Stray files are not blobs.
	os.WriteFile(filepath.Join(dir, "blobs", "sha256", "README"), []byte("hi"), 0o644)
	u, err := st.Usage(ctx)
	if err != nil || u != (Usage{Blobs: 5, Bytes: total}) {
		t.Fatalf("Usage = %+v, %v; want 5 blobs, %d bytes", u, err, total)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "oci2", "ingest")); len(ents) != 0 {
		t.Fatalf("ingest not empty after writes: %v", ents)
	}
	// Refs and blobs survive reopening.
	d := digest.FromBytes([]byte("x"))
	if err := st.SetRef(ctx, "r", ocispec.Descriptor{Digest: d, Size: 1}); err != nil {
		t.Fatal(err)
	}
	st2 := mustOpen(t, dir)
	if got, err := st2.GetRef(ctx, "r"); err != nil || got.Digest != d {
		t.Fatalf("after reopen: GetRef = %v, %v", got, err)
	}
}

func TestCleanIngest(t *testing.T) {
	dir := t.TempDir()
	st := mustOpen(t, dir)
	ctx := t.Context()
	stale := filepath.Join(dir, "oci2", "ingest", "blob-dead")
	os.WriteFile(stale, []byte("partial"), 0o600)
	live, err := st.createTemp() // a write in progress holds its lock
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	n, err := st.CleanIngest(ctx)
	if err != nil || n != 1 {
		t.Fatalf("CleanIngest = %d, %v; want 1 removed", n, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("stale temp file survived")
	}
	if _, err := os.Stat(live.Name()); err != nil {
		t.Errorf("live temp file removed: %v", err)
	}
	// Its writer can still finish.
	if err := unix.Flock(int(live.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("OCI2_STORE", "/x/store")
	if d, _ := DefaultDir(); d != "/x/store" {
		t.Errorf("with OCI2_STORE: %s", d)
	}
	t.Setenv("OCI2_STORE", "")
	t.Setenv("XDG_DATA_HOME", "/x/data")
	if d, _ := DefaultDir(); d != "/x/data/oci2" {
		t.Errorf("with XDG_DATA_HOME: %s", d)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d, _ := DefaultDir(); d != "/home/u/.local/share/oci2" {
		t.Errorf("with HOME: %s", d)
	}
}

// TestDroppedLeaseStaysHeld checks that a lease whose release func became
// garbage is not released by the file's finalizer.
func TestDroppedLeaseStaysHeld(t *testing.T) {
	st := mustOpen(t, t.TempDir())
	if _, err := st.Lease(t.Context()); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
	if _, err := st.Exclusive(t.Context(), false); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Exclusive after a dropped lease: %v, want ErrLocked", err)
	}
}
