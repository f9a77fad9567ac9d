package blobdir

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
)

func TestDir(t *testing.T) {
	dir := t.TempDir()
	good := []byte("a pack's bytes")
	gd := digest.FromBytes(good)
	bad := digest.FromString("what the file should hold")
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	for dg, b := range map[digest.Digest][]byte{gd: good, bad: []byte("something else")} {
		if err := os.WriteFile(filepath.Join(dir, "sha256", dg.Encoded()), b, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	d := New(dir)
	ctx := t.Context()
	if b, err := d.ReadBlob(ctx, gd, 0); err != nil || string(b) != string(good) {
		t.Fatalf("ReadBlob = %q, %v", b, err)
	}
	if info, err := d.Stat(ctx, gd); err != nil || info.Size != int64(len(good)) {
		t.Errorf("Stat = %+v, %v", info, err)
	}
	if _, err := d.ReadBlob(ctx, gd, 3); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("ReadBlob over maxSize: %v, want ErrTooLarge", err)
	}
	if _, err := d.ReadBlob(ctx, bad, 0); !errors.Is(err, store.ErrDigestMismatch) {
		t.Errorf("ReadBlob of a corrupt blob: %v, want ErrDigestMismatch", err)
	}
	rc, err := d.Open(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); !errors.Is(err, store.ErrDigestMismatch) {
		t.Errorf("Open of a corrupt blob read: %v, want ErrDigestMismatch", err)
	}
	rc.Close()
	missing := digest.FromString("missing")
	if _, err := d.Stat(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat of a missing blob: %v, want ErrNotFound", err)
	}
	if b, err := d.ReadRange(ctx, gd, 2, 4); err != nil || string(b) != "pack" {
		t.Errorf("ReadRange = %q, %v", b, err)
	}
	if _, err := d.ReadRange(ctx, gd, 10, 10); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadRange past the end: %v, want ErrUnexpectedEOF", err)
	}
}
