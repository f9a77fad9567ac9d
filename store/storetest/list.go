package storetest

import (
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
)

func testListBlobs(t *testing.T, st store.Store) {
	infos, ok := listAll(t, st)
	if !ok {
		t.Skip("ListBlobs: unsupported")
	}
	if len(infos) != 0 {
		t.Fatalf("new store lists %v", infos)
	}
	want := map[digest.Digest]int64{}
	for i := range 40 {
		b, d := blob(uint64(400+i), i*37)
		put(t, st, b)
		want[d] = int64(len(b))
	}
	infos, _ = listAll(t, st)
	if len(infos) != len(want) {
		t.Fatalf("ListBlobs returned %d blobs, want %d", len(infos), len(want))
	}
	for i, info := range infos {
		if i > 0 && infos[i-1].Digest >= info.Digest {
			t.Fatalf("ListBlobs not in digest order: %s then %s", infos[i-1].Digest, info.Digest)
		}
		size, ok := want[info.Digest]
		if !ok || size != info.Size {
			t.Fatalf("ListBlobs gave %+v; stored size %d (stored: %v)", info, size, ok)
		}
	}

	// An error from fn stops the listing and is returned.
	stop := errors.New("stop")
	calls := 0
	err := st.ListBlobs(t.Context(), func(store.Info) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	wantErr(t, "ListBlobs with failing fn", err, stop)
	if calls != 3 {
		t.Fatalf("fn called %d times after failing on the 3rd", calls)
	}
}

func testDeleteBlob(t *testing.T, st store.Store) {
	ctx := t.Context()
	b1, d1 := blob(500, 1000)
	b2, d2 := blob(501, 1000)
	put(t, st, b1)
	put(t, st, b2)
	err := st.DeleteBlob(ctx, d1)
	skipUnsupported(t, "DeleteBlob", err)
	if err != nil {
		t.Fatalf("DeleteBlob: %v", err)
	}
	_, err = st.Stat(ctx, d1)
	wantErr(t, "Stat after delete", err, store.ErrNotFound)
	_, err = st.ReadBlob(ctx, d1, 0)
	wantErr(t, "ReadBlob after delete", err, store.ErrNotFound)
	if err := st.DeleteBlob(ctx, d1); err != nil {
		t.Fatalf("DeleteBlob of a missing blob: %v", err)
	}
	mustRead(t, st, d2, b2)
	if infos, ok := listAll(t, st); ok && (len(infos) != 1 || infos[0].Digest != d2) {
		t.Fatalf("ListBlobs after delete = %v, want just %s", infos, d2)
	}
	put(t, st, b1) // stored again after deletion
	mustRead(t, st, d1, b1)
}
