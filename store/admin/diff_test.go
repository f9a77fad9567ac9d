package admin

import (
	"context"
	"reflect"
	"testing"

	"github.com/oci2/oci2/store/memstore"
)

func side(t *testing.T, st *memstore.Store, name string) Side {
	t.Helper()
	s, err := OpenSide(context.Background(), st, mustResolve(t, st, name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDiff(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	storeImage(t, st, "a", baseTree())
	storeImage(t, st, "b", changedTree())
	a, b := side(t, st, "a"), side(t, st, "b")
	got, err := Diff(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	// Directories whose children changed keep their own metadata here, so
	// only entries that differ themselves are listed.
	want := []Change{
		{Path: "/bin/tool", Kind: Modified, Type: "file", Content: true},
		{Path: "/etc/hosts", Kind: Modified, Type: "file", Metadata: true},
		{Path: "/etc/new", Kind: Added, Type: "file"},
		{Path: "/readme", Kind: Removed, Type: "file"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("diff a b:\n got %+v\nwant %+v", got, want)
	}

	back, err := Diff(ctx, b, a)
	if err != nil {
		t.Fatal(err)
	}
	wantBack := []Change{
		{Path: "/bin/tool", Kind: Modified, Type: "file", Content: true},
		{Path: "/etc/hosts", Kind: Modified, Type: "file", Metadata: true},
		{Path: "/etc/new", Kind: Removed, Type: "file"},
		{Path: "/readme", Kind: Added, Type: "file"},
	}
	if !reflect.DeepEqual(back, wantBack) {
		t.Fatalf("diff b a:\n got %+v\nwant %+v", back, wantBack)
	}
}

func TestDiffIdenticalReadsNothing(t *testing.T) {
	st := memstore.New()
	storeImage(t, st, "a", baseTree())
	s := side(t, st, "a")
	// Same root: no tree is read (a nil reader would panic).
	got, err := Diff(context.Background(), Side{Root: s.Root}, Side{Root: s.Root})
	if err != nil || len(got) != 0 {
		t.Fatalf("diff of an image with itself: %v, %v", got, err)
	}
}

func TestDiffTypeChangeAndRootMeta(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	storeImage(t, st, "a", dir("", file("x", []byte("x")), dir("d", file("y", []byte("y")))))
	r := dir("", symlink("x", "elsewhere"), file("d", []byte("now a file")))
	r.Mode = 0o700
	storeImage(t, st, "b", r)
	got, err := Diff(ctx, side(t, st, "a"), side(t, st, "b"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Path: "/", Kind: Modified, Type: "dir", Metadata: true},
		// The modes differ too (0755 dir, 0644 file, 0777 symlink).
		{Path: "/d", Kind: Modified, Type: "file", Content: true, Metadata: true},
		{Path: "/x", Kind: Modified, Type: "symlink", Content: true, Metadata: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}
