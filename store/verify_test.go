package store

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestCheckDigest(t *testing.T) {
	good := digest.FromString("x")
	if err := CheckDigest(good); err != nil {
		t.Fatalf("CheckDigest(%s): %v", good, err)
	}
	for _, d := range []digest.Digest{"", "sha256", "sha256:", "sha256:abc", ":" + good[7:], "sha256:" + digest.Digest(strings.ToUpper(good.Encoded())),
		"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e", "sha256:../" + good[10:]} {
		if err := CheckDigest(d); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("CheckDigest(%q) = %v, want ErrInvalidDigest", d, err)
		}
	}
}

func TestVerifyReader(t *testing.T) {
	data := []byte("hello, verified world")
	d := digest.FromBytes(data)
	read := func(d digest.Digest, size int64, b []byte) error {
		_, err := io.ReadAll(VerifyReader(io.NopCloser(bytes.NewReader(b)), d, size))
		return err
	}
	if err := read(d, -1, data); err != nil {
		t.Fatalf("good data, unknown size: %v", err)
	}
	if err := read(d, int64(len(data)), data); err != nil {
		t.Fatalf("good data, known size: %v", err)
	}
	if err := read(d, -1, data[1:]); !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), d.Encoded()) {
		t.Fatalf("bad data: %v", err)
	}
	if err := read(d, int64(len(data))+1, data); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("short data: %v", err)
	}
	if err := read(d, int64(len(data))-1, data); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("long data: %v", err)
	}
	// The verdict is sticky.
	r := VerifyReader(io.NopCloser(bytes.NewReader(data[1:])), d, -1)
	io.ReadAll(r)
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("read after a mismatch: %v", err)
	}
	if err := VerifyBytes(d, data); err != nil {
		t.Fatal(err)
	}
	if err := VerifyBytes(d, nil); !errors.Is(err, ErrDigestMismatch) {
		t.Fatal(err)
	}
	if err := VerifyBytes("md5:x", nil); !errors.Is(err, ErrInvalidDigest) {
		t.Fatal(err)
	}
	if err := read("sha512:00", -1, data); !errors.Is(err, ErrInvalidDigest) {
		t.Fatalf("invalid digest: %v", err)
	}
}
