package storetest

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/store"
)

// putDesc stores a blob and returns a descriptor of it.
func putDesc(t *testing.T, st store.Store, seed uint64, annotations map[string]string) ocispec.Descriptor {
	t.Helper()
	b, _ := blob(seed, 200+int(seed%50))
	return ocispec.Descriptor{
		MediaType:   ocispec.MediaTypeImageIndex,
		Digest:      put(t, st, b),
		Size:        int64(len(b)),
		Annotations: annotations,
	}
}

func wantRef(t *testing.T, st store.Store, name string, want ocispec.Descriptor) {
	t.Helper()
	got, err := st.GetRef(t.Context(), name)
	if err != nil {
		t.Fatalf("GetRef(%q): %v", name, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetRef(%q) = %+v, want %+v", name, got, want)
	}
}

func testRefs(t *testing.T, st store.Store) {
	ctx := t.Context()
	if refs, err := st.ListRefs(ctx); err != nil || len(refs) != 0 {
		t.Fatalf("new store: ListRefs = %v, %v", refs, err)
	}
	names := []string{
		"docker.io/library/hello:latest",
		"a.example/x@sha256:0000000000000000000000000000000000000000000000000000000000000000",
		"localhost:5000/deep/path/name:v1.2",
		"docker.io/library/hello:1",
		"z",
	}
	descs := map[string]ocispec.Descriptor{}
	for i, name := range names {
		var ann map[string]string
		if i%2 == 0 {
			ann = map[string]string{"org.example.note": fmt.Sprint("n", i)}
		}
		descs[name] = putDesc(t, st, uint64(600+i), ann)
		if err := st.SetRef(ctx, name, descs[name]); err != nil {
			t.Fatalf("SetRef(%q): %v", name, err)
		}
	}
	for name, desc := range descs {
		wantRef(t, st, name, desc)
	}
	refs, err := st.ListRefs(ctx)
	if err != nil {
		t.Fatalf("ListRefs: %v", err)
	}
	if len(refs) != len(names) {
		t.Fatalf("ListRefs returned %d refs, want %d", len(refs), len(names))
	}
	for i, r := range refs {
		if i > 0 && refs[i-1].Name >= r.Name {
			t.Fatalf("ListRefs not sorted: %q then %q", refs[i-1].Name, r.Name)
		}
		if !reflect.DeepEqual(r.Descriptor, descs[r.Name]) {
			t.Fatalf("ListRefs[%q] = %+v, want %+v", r.Name, r.Descriptor, descs[r.Name])
		}
	}

	// Returned descriptors are copies.
	got, _ := st.GetRef(ctx, names[0])
	got.Annotations["org.example.note"] = "changed"
	wantRef(t, st, names[0], descs[names[0]])

	// Replace, then delete.
	repl := putDesc(t, st, 700, nil)
	if err := st.SetRef(ctx, names[0], repl); err != nil {
		t.Fatalf("SetRef (replace): %v", err)
	}
	wantRef(t, st, names[0], repl)
	if err := st.DeleteRef(ctx, names[1]); err != nil {
		t.Fatalf("DeleteRef: %v", err)
	}
	_, err = st.GetRef(ctx, names[1])
	wantErr(t, "GetRef after DeleteRef", err, store.ErrNotFound)
	err = st.DeleteRef(ctx, names[1])
	wantErr(t, "DeleteRef twice", err, store.ErrNotFound)
	refs, _ = st.ListRefs(ctx)
	if len(refs) != len(names)-1 {
		t.Fatalf("after replace and delete: %d refs, want %d", len(refs), len(names)-1)
	}
	// Deleting a ref leaves its blob alone.
	mustStat(t, st, descs[names[1]].Digest)
}

func mustStat(t *testing.T, st store.Store, d digest.Digest) {
	t.Helper()
	if _, err := st.Stat(t.Context(), d); err != nil {
		t.Fatalf("Stat(%s): %v", d, err)
	}
}

func testRefErrors(t *testing.T, st store.Store) {
	ctx := t.Context()
	desc := putDesc(t, st, 800, nil)
	b, missing := blob(801, 10)
	err := st.SetRef(ctx, "example.com/a:missing", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: missing, Size: int64(len(b))})
	wantErr(t, "SetRef to a missing blob", err, store.ErrNotFound)
	wrong := desc
	wrong.Size++
	err = st.SetRef(ctx, "example.com/a:size", wrong)
	wantErr(t, "SetRef with a wrong size", err, store.ErrSizeMismatch)
	if err := st.SetRef(ctx, "", desc); err == nil {
		t.Fatal("SetRef with an empty name succeeded")
	}
	if refs, err := st.ListRefs(ctx); err != nil || len(refs) != 0 {
		t.Fatalf("failed SetRefs left refs: %v, %v", refs, err)
	}
}
