package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
)

// blobPath returns blobs/<alg>/<hex> for a digest that passed CheckDigest.
func (s *Store) blobPath(d digest.Digest) string {
	return s.path(blobsDir + "/" + string(d.Algorithm()) + "/" + d.Encoded())
}

// openBlob opens a blob file and returns its size.
func (s *Store) openBlob(d digest.Digest) (*os.File, int64, error) {
	if err := store.CheckDigest(d); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("blob %s: %w", d, store.ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blob %s: %w", d, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("blob %s: %w", d, err)
	}
	return f, fi.Size(), nil
}

// Stat implements store.Reader.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (store.Info, error) {
	if err := store.CheckDigest(d); err != nil {
		return store.Info{}, err
	}
	fi, err := os.Stat(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return store.Info{}, fmt.Errorf("blob %s: %w", d, store.ErrNotFound)
	}
	if err != nil {
		return store.Info{}, fmt.Errorf("blob %s: %w", d, err)
	}
	return store.Info{Digest: d, Size: fi.Size()}, nil
}

// ReadBlob implements store.Reader: it reads the whole file and checks
// its digest.
func (s *Store) ReadBlob(ctx context.Context, d digest.Digest, maxSize int64) ([]byte, error) {
	f, size, err := s.openBlob(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if maxSize > 0 && size > maxSize {
		return nil, fmt.Errorf("blob %s: %d bytes, limit %d: %w", d, size, maxSize, store.ErrTooLarge)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	if err := store.VerifyBytes(d, b); err != nil {
		return nil, err
	}
	return b, nil
}

// Open implements store.Reader; the reader verifies the digest at EOF.
func (s *Store) Open(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	f, _, err := s.openBlob(d)
	if err != nil {
		return nil, err
	}
	return store.VerifyReader(f, d, -1), nil
}

// ReadRange implements store.RangeReader (unverified: the caller checks).
func (s *Store) ReadRange(ctx context.Context, d digest.Digest, offset, length int64) ([]byte, error) {
	f, size, err := s.openBlob(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("blob %s: invalid range %d+%d", d, offset, length)
	}
	if offset+length > size || offset+length < 0 {
		return nil, fmt.Errorf("blob %s: range %d+%d beyond size %d: %w", d, offset, length, size, io.ErrUnexpectedEOF)
	}
	b := make([]byte, length)
	if _, err := f.ReadAt(b, offset); err != nil && !(err == io.EOF && length == 0) {
		return nil, fmt.Errorf("blob %s: reading %d+%d: %w", d, offset, length, err)
	}
	return b, nil
}

// ListBlobs implements store.Lister. It lists a snapshot of
// blobs/sha256 (so fn may delete blobs), skipping names that are not digests
// and blobs deleted meanwhile.
func (s *Store) ListBlobs(ctx context.Context, fn func(store.Info) error) error {
	entries, err := os.ReadDir(s.path(blobsDir + "/" + string(digest.SHA256)))
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, e := range entries { // sorted by name, so by digest
		if err := ctx.Err(); err != nil {
			return err
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if store.CheckDigest(d) != nil || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("list blobs: %w", err)
		}
		if err := fn(store.Info{Digest: d, Size: fi.Size()}); err != nil {
			return err
		}
	}
	return nil
}

// DeleteBlob implements store.Lister. Callers that may race with
// writers of the same blob hold Exclusive.
func (s *Store) DeleteBlob(ctx context.Context, d digest.Digest) error {
	if err := store.CheckDigest(d); err != nil {
		return err
	}
	if err := os.Remove(s.blobPath(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// Usage is what the store's blobs take.
type Usage struct {
	Blobs int   // number of blobs
	Bytes int64 // sum of their sizes (apparent, not allocated)
}

// Usage sums the sizes of all blobs.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	var u Usage
	err := s.ListBlobs(ctx, func(i store.Info) error {
		u.Blobs++
		u.Bytes += i.Size
		return nil
	})
	return u, err
}
