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
	"github.com/oci2/oci2/store/blobdir"
)

// blobPath returns blobs/<alg>/<hex> for a digest that passed CheckDigest.
func (s *Store) blobPath(d digest.Digest) string {
	return s.path(blobsDir + "/" + string(d.Algorithm()) + "/" + d.Encoded())
}

// files reads the blob files: the reads are blobdir's, over blobs/.
func (s *Store) files() *blobdir.Dir { return blobdir.New(s.path(blobsDir)) }

// Stat implements store.Reader.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (store.Info, error) {
	return s.files().Stat(ctx, d)
}

// ReadBlob implements store.Reader: it reads the whole file and checks
// its digest.
func (s *Store) ReadBlob(ctx context.Context, d digest.Digest, maxSize int64) ([]byte, error) {
	return s.files().ReadBlob(ctx, d, maxSize)
}

// Open implements store.Reader; the reader verifies the digest at EOF.
func (s *Store) Open(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	return s.files().Open(ctx, d)
}

// ReadRange implements store.RangeReader (unverified: the caller checks).
func (s *Store) ReadRange(ctx context.Context, d digest.Digest, offset, length int64) ([]byte, error) {
	return s.files().ReadRange(ctx, d, offset, length)
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
