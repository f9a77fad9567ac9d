package storetest

import (
	"bytes"
	"errors"
	"testing"
	"testing/iotest"

	"github.com/oci2/oci2/store"
)

func testWriteBlob(t *testing.T, st store.Store) {
	ctx := t.Context()
	for i, n := range []int{0, 1, 65_536, 1<<20 + 3} {
		b, d := blob(uint64(100+i), n)
		if err := st.WriteBlob(ctx, d, -1, iotest.HalfReader(bytes.NewReader(b))); err != nil {
			t.Fatalf("WriteBlob(size -1, %d bytes): %v", n, err)
		}
		mustRead(t, st, d, b)

		b, d = blob(uint64(200+i), n)
		if err := st.WriteBlob(ctx, d, int64(n), iotest.OneByteReader(bytes.NewReader(b))); err != nil {
			t.Fatalf("WriteBlob(size %d, one byte at a time): %v", n, err)
		}
		mustRead(t, st, d, b)
	}
}

// failingReader returns some bytes and then an error.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func testWriteBlobErrors(t *testing.T, st store.Store) {
	ctx := t.Context()
	b, d := blob(300, 50_000)
	_, other := blob(301, 50_000)
	check := func(name string, err, want error) {
		t.Helper()
		wantErr(t, name, err, want)
		if _, err := st.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: blob stored after a failed write (Stat: %v)", name, err)
		}
		if _, err := st.Stat(ctx, other); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: blob stored after a failed write (Stat: %v)", name, err)
		}
	}
	check("short stream", st.WriteBlob(ctx, d, 50_001, bytes.NewReader(b)), store.ErrSizeMismatch)
	check("long stream", st.WriteBlob(ctx, d, 49_999, bytes.NewReader(b)), store.ErrSizeMismatch)
	check("wrong digest, size -1", st.WriteBlob(ctx, other, -1, bytes.NewReader(b)), store.ErrDigestMismatch)
	check("wrong digest, known size", st.WriteBlob(ctx, other, 50_000, bytes.NewReader(b)), store.ErrDigestMismatch)
	boom := errors.New("boom")
	check("reader error", st.WriteBlob(ctx, d, -1, &failingReader{data: b[:20_000], err: boom}), boom)
	if infos, ok := listAll(t, st); ok && len(infos) != 0 {
		t.Fatalf("failed writes stored %v", infos)
	}
}
