package store

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrInvalidDigest reports a digest that is malformed or uses an algorithm
// other than sha256, the only one stores accept.
var ErrInvalidDigest = errors.New("invalid digest")

// CheckDigest returns nil when d is a well-formed sha256 digest. Backends call
// it before d reaches a path or a URL.
func CheckDigest(d digest.Digest) error {
	// Validate first: Algorithm panics on a digest without a separator.
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %v: %w", d, err, ErrInvalidDigest)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %q: unsupported algorithm: %w", d, ErrInvalidDigest)
	}
	return nil
}

// VerifyBytes returns nil when data hashes to d, else ErrDigestMismatch
// (or ErrInvalidDigest).
func VerifyBytes(d digest.Digest, data []byte) error {
	if err := CheckDigest(d); err != nil {
		return err
	}
	if got := d.Algorithm().FromBytes(data); got != d {
		return fmt.Errorf("blob %s: content hashes to %s: %w", d, got, ErrDigestMismatch)
	}
	return nil
}

// VerifyReader wraps rc so that reading it to EOF checks the bytes against d
// (and size, when size >= 0): a mismatch is returned instead of io.EOF, as
// ErrDigestMismatch or ErrSizeMismatch. Closing rc early skips the check.
// An invalid d fails the first Read with ErrInvalidDigest.
func VerifyReader(rc io.ReadCloser, d digest.Digest, size int64) io.ReadCloser {
	if err := CheckDigest(d); err != nil {
		return &verifyingReader{rc: rc, d: d, err: err}
	}
	return &verifyingReader{rc: rc, d: d, size: size, h: d.Algorithm().Hash()}
}

type verifyingReader struct {
	rc   io.ReadCloser
	d    digest.Digest
	size int64 // expected size, -1 when unknown
	n    int64 // bytes read so far
	h    hash.Hash
	err  error // sticky verdict once EOF was seen
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		v.err = fmt.Errorf("blob %s: more than %d bytes: %w", v.d, v.size, ErrSizeMismatch)
		return n, v.err
	}
	if err == io.EOF {
		v.err = v.verdict()
		return n, v.err
	}
	return n, err
}

// verdict decides what EOF means: io.EOF when the content is right.
func (v *verifyingReader) verdict() error {
	if v.size >= 0 && v.n != v.size {
		return fmt.Errorf("blob %s: got %d bytes, want %d: %w", v.d, v.n, v.size, ErrSizeMismatch)
	}
	if got := digest.NewDigest(v.d.Algorithm(), v.h); got != v.d {
		return fmt.Errorf("blob %s: content hashes to %s: %w", v.d, got, ErrDigestMismatch)
	}
	return io.EOF
}

func (v *verifyingReader) Close() error { return v.rc.Close() }

// CheckRefTarget is what a backend's SetRef checks before it names desc:
// a non-empty name, and the blob stored with the descriptor's size.
func CheckRefTarget(ctx context.Context, st Reader, name string, desc ocispec.Descriptor) error {
	if name == "" {
		return fmt.Errorf("set ref: empty name")
	}
	info, err := st.Stat(ctx, desc.Digest)
	if err != nil {
		return fmt.Errorf("set ref %q: %w", name, err)
	}
	if info.Size != desc.Size {
		return fmt.Errorf("set ref %q: blob %s has %d bytes, descriptor says %d: %w",
			name, desc.Digest, info.Size, desc.Size, ErrSizeMismatch)
	}
	return nil
}
