package local

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/internal/testenv"
)

// Both write paths (unnamed files where supported, named temp files in
// oci2/ingest otherwise) store read-only blobs, replace a damaged blob, let
// concurrent writers of one blob all succeed, and leave ingest empty.
func TestWritePaths(t *testing.T) {
	for _, unnamed := range []bool{true, false} {
		t.Run(map[bool]string{true: "unnamed", false: "ingest"}[unnamed], func(t *testing.T) {
			dir := t.TempDir()
			st := mustOpen(t, dir)
			if unnamed && !st.unnamedSupported() {
				testenv.Unavailable(t, "O_TMPFILE or /proc not available here")
			}
			if !unnamed {
				st.unnamedOnce.Do(func() {}) // unnamedOK stays false
			}
			ctx := t.Context()
			b := []byte(strings.Repeat("frame bytes ", 1000))
			d := digest.FromBytes(b)
			p := filepath.Join(dir, "blobs", "sha256", d.Encoded())

			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() {
					if i%2 == 0 {
						errs[i] = st.PutBlob(ctx, d, b)
					} else {
						errs[i] = st.WriteBlob(ctx, d, int64(len(b)), bytes.NewReader(b))
					}
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("writer %d: %v", i, err)
				}
			}
			checkBlobFile(t, p, b)

			// A damaged (short) blob is replaced by the next write.
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b[:10], 0o444); err != nil {
				t.Fatal(err)
			}
			if err := st.PutBlob(ctx, d, b); err != nil {
				t.Fatal(err)
			}
			checkBlobFile(t, p, b)

			// A stream of the wrong content stores nothing.
			other := bytes.Repeat([]byte("y"), len(b))
			d2 := digest.FromBytes(append([]byte("z"), other[1:]...))
			if err := st.WriteBlob(ctx, d2, int64(len(other)), bytes.NewReader(other)); err == nil {
				t.Fatal("WriteBlob of wrong content succeeded")
			}
			if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", d2.Encoded())); !os.IsNotExist(err) {
				t.Fatalf("blob of a failed write: %v", err)
			}
			if ents, _ := os.ReadDir(filepath.Join(dir, "oci2", "ingest")); len(ents) != 0 {
				t.Fatalf("ingest not empty after writes: %v", ents)
			}
		})
	}
}

func checkBlobFile(t *testing.T, p string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("blob file holds %d bytes (%v), want %d", len(got), err, len(want))
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("blob file mode: %v, %v", fi, err)
	}
}

// PutHashedBlob stores the bytes it is given under d without hashing them:
// callers vouch for the digest.
func TestPutHashedBlob(t *testing.T) {
	dir := t.TempDir()
	st := mustOpen(t, dir)
	b := []byte("hashed by the caller")
	d := digest.FromBytes(b)
	if err := st.PutHashedBlob(t.Context(), d, b); err != nil {
		t.Fatal(err)
	}
	checkBlobFile(t, filepath.Join(dir, "blobs", "sha256", d.Encoded()), b)
	if got, err := st.ReadBlob(t.Context(), d, 0); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("ReadBlob = %q, %v", got, err)
	}
	if err := st.PutHashedBlob(t.Context(), "sha256:zz", b); err == nil {
		t.Fatal("PutHashedBlob accepted an invalid digest")
	}
}
