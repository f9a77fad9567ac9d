package storetest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
)

func testPutGet(t *testing.T, st store.Store) {
	for i, n := range []int{0, 1, 4095, 100_000, 1 << 20} {
		b, d := blob(uint64(i), n)
		if got := put(t, st, b); got != d {
			t.Fatalf("digest %s, want %s", got, d)
		}
		mustRead(t, st, d, b)
		got, err := st.ReadBlob(t.Context(), d, int64(n)) // limit == size is allowed
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("ReadBlob(%s, maxSize=%d): %d bytes, %v", d, n, len(got), err)
		}
	}
	// The empty blob has a well-known digest.
	empty := digest.Digest("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	mustRead(t, st, empty, nil)
}

func testPutCopies(t *testing.T, st store.Store) {
	b, d := blob(1, 1000)
	orig := bytes.Clone(b)
	put(t, st, b)
	b[0] ^= 0xff // the caller's slice is not the store's
	mustRead(t, st, d, orig)
	got, err := st.ReadBlob(t.Context(), d, 0)
	if err != nil {
		t.Fatal(err)
	}
	got[0] ^= 0xff // nor is the returned one
	mustRead(t, st, d, orig)
}

func testPutIdempotent(t *testing.T, st store.Store) {
	b, d := blob(2, 5000)
	put(t, st, b)
	put(t, st, b)
	if err := st.WriteBlob(t.Context(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatalf("WriteBlob of a stored blob: %v", err)
	}
	mustRead(t, st, d, b)
	if infos, ok := listAll(t, st); ok && (len(infos) != 1 || infos[0].Digest != d) {
		t.Fatalf("ListBlobs = %v, want just %s", infos, d)
	}
}

func testPutDigestMismatch(t *testing.T, st store.Store) {
	b, _ := blob(3, 100)
	_, other := blob(4, 100)
	err := st.PutBlob(t.Context(), other, b)
	wantErr(t, "PutBlob with wrong digest", err, store.ErrDigestMismatch)
	if !strings.Contains(err.Error(), other.Encoded()) {
		t.Errorf("error %q does not name the blob %s", err, other)
	}
	_, err = st.Stat(t.Context(), other)
	wantErr(t, "Stat after failed put", err, store.ErrNotFound)
	if infos, ok := listAll(t, st); ok && len(infos) != 0 {
		t.Fatalf("failed put stored %v", infos)
	}
}

func testInvalidDigest(t *testing.T, st store.Store) {
	ctx := t.Context()
	for _, d := range []digest.Digest{
		"",
		"sha256:zz",
		"sha256:../../../../etc/passwd",
		"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
		"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
		"md5:d41d8cd98f00b204e9800998ecf8427e",
	} {
		_, err := st.Stat(ctx, d)
		wantErr(t, "Stat("+string(d)+")", err, store.ErrInvalidDigest)
		err = st.PutBlob(ctx, d, nil)
		wantErr(t, "PutBlob("+string(d)+")", err, store.ErrInvalidDigest)
		err = st.WriteBlob(ctx, d, 0, bytes.NewReader(nil))
		wantErr(t, "WriteBlob("+string(d)+")", err, store.ErrInvalidDigest)
		_, err = st.ReadBlob(ctx, d, 0)
		wantErr(t, "ReadBlob("+string(d)+")", err, store.ErrInvalidDigest)
		_, err = st.Open(ctx, d)
		wantErr(t, "Open("+string(d)+")", err, store.ErrInvalidDigest)
		if err = st.DeleteBlob(ctx, d); !errors.Is(err, errors.ErrUnsupported) {
			wantErr(t, "DeleteBlob("+string(d)+")", err, store.ErrInvalidDigest)
		}
	}
}

func testTooLarge(t *testing.T, st store.Store) {
	b, d := blob(5, 1001)
	put(t, st, b)
	_, err := st.ReadBlob(t.Context(), d, 1000)
	wantErr(t, "ReadBlob over maxSize", err, store.ErrTooLarge)
	if !strings.Contains(err.Error(), d.Encoded()) {
		t.Errorf("error %q does not name the blob", err)
	}
}

func testNotFound(t *testing.T, st store.Store) {
	ctx := t.Context()
	_, d := blob(6, 10)
	_, err := st.Stat(ctx, d)
	wantErr(t, "Stat", err, store.ErrNotFound)
	_, err = st.ReadBlob(ctx, d, 0)
	wantErr(t, "ReadBlob", err, store.ErrNotFound)
	_, err = st.Open(ctx, d)
	wantErr(t, "Open", err, store.ErrNotFound)
	if rr, ok := st.(store.RangeReader); ok {
		_, err = rr.ReadRange(ctx, d, 0, 1)
		wantErr(t, "ReadRange", err, store.ErrNotFound)
	}
	_, err = st.GetRef(ctx, "example.com/missing:latest")
	wantErr(t, "GetRef", err, store.ErrNotFound)
	err = st.DeleteRef(ctx, "example.com/missing:latest")
	wantErr(t, "DeleteRef", err, store.ErrNotFound)
}

func testOpen(t *testing.T, st store.Store) {
	b, d := blob(7, 300_000)
	put(t, st, b)
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"plain":   func(r io.Reader) io.Reader { return r },
		"onebyte": iotest.OneByteReader,
		"halves":  iotest.HalfReader,
	} {
		rc, err := st.Open(t.Context(), d)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		got, err := io.ReadAll(wrap(rc))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%s read: %d bytes, %v", name, len(got), err)
		}
		if err := rc.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	// Closing before EOF is fine.
	rc, err := st.Open(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("early Close: %v", err)
	}
}

func testCorruption(t *testing.T, st store.Store) {
	c, ok := st.(Corrupter)
	if !ok {
		t.Skip("store does not implement storetest.Corrupter")
	}
	ctx := t.Context()
	b, d := blob(8, 10_000)
	bad := bytes.Clone(b)
	bad[5000] ^= 1
	for name, data := range map[string][]byte{"flipped": bad, "truncated": b[:9000], "extended": append(bytes.Clone(b), 0)} {
		put(t, st, b)
		if err := c.Corrupt(ctx, d, data); err != nil {
			t.Fatalf("Corrupt: %v", err)
		}
		_, err := st.ReadBlob(ctx, d, 0)
		wantErr(t, name+": ReadBlob", err, store.ErrDigestMismatch)
		if !strings.Contains(err.Error(), d.Encoded()) {
			t.Errorf("%s: error %q does not name the blob", name, err)
		}
		rc, err := st.Open(ctx, d)
		if err != nil {
			t.Fatalf("%s: Open: %v", name, err)
		}
		_, err = io.ReadAll(rc)
		rc.Close()
		wantErr(t, name+": Open+ReadAll", err, store.ErrDigestMismatch)
		// A fresh put repairs nothing it does not have to, but the blob can
		// always be deleted and stored again.
		err = st.DeleteBlob(ctx, d)
		skipUnsupported(t, "DeleteBlob", err)
		if err != nil {
			t.Fatal(err)
		}
	}
	put(t, st, b)
	mustRead(t, st, d, b)
}

func testReadRange(t *testing.T, st store.Store) {
	rr, ok := st.(store.RangeReader)
	if !ok {
		t.Skip("store does not implement store.RangeReader")
	}
	ctx := t.Context()
	b, d := blob(9, 70_000)
	put(t, st, b)
	for _, r := range [][2]int64{{0, 0}, {0, 1}, {0, 70_000}, {69_999, 1}, {70_000, 0}, {12_345, 40_000}} {
		got, err := rr.ReadRange(ctx, d, r[0], r[1])
		if err != nil {
			t.Fatalf("ReadRange(%d, %d): %v", r[0], r[1], err)
		}
		if !bytes.Equal(got, b[r[0]:r[0]+r[1]]) {
			t.Fatalf("ReadRange(%d, %d): wrong bytes (%d)", r[0], r[1], len(got))
		}
	}
	for _, r := range [][2]int64{{69_999, 2}, {70_001, 0}, {0, 70_001}} {
		_, err := rr.ReadRange(ctx, d, r[0], r[1])
		wantErr(t, "ReadRange past the end", err, io.ErrUnexpectedEOF)
	}
	for _, r := range [][2]int64{{-1, 1}, {0, -1}} {
		if _, err := rr.ReadRange(ctx, d, r[0], r[1]); err == nil {
			t.Fatalf("ReadRange(%d, %d) succeeded", r[0], r[1])
		}
	}
}
