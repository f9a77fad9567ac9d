package memstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Store keeps blobs and refs in maps. The zero value is not usable; call New.
// Stored slices are private copies that are never modified in place, so
// readers may share them while holding no lock.
type Store struct {
	mu    sync.RWMutex
	blobs map[digest.Digest][]byte
	units map[digest.Digest][]byte // unit descriptors
	refs  map[string]ocispec.Descriptor
	gate  gate
}

var _ store.Store = (*Store)(nil)
var _ store.RangeReader = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		blobs: map[digest.Digest][]byte{},
		units: map[digest.Digest][]byte{},
		refs:  map[string]ocispec.Descriptor{},
	}
}

// get returns the stored slice (shared, read-only) or ErrNotFound.
func (s *Store) get(d digest.Digest) ([]byte, error) {
	if err := store.CheckDigest(d); err != nil {
		return nil, err
	}
	s.mu.RLock()
	b, ok := s.blobs[d]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", d, store.ErrNotFound)
	}
	return b, nil
}

// Stat implements store.Reader.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (store.Info, error) {
	b, err := s.get(d)
	if err != nil {
		return store.Info{}, err
	}
	return store.Info{Digest: d, Size: int64(len(b))}, nil
}

// ReadBlob implements store.Reader; it verifies the bytes (see Corrupt).
func (s *Store) ReadBlob(ctx context.Context, d digest.Digest, maxSize int64) ([]byte, error) {
	b, err := s.get(d)
	if err != nil {
		return nil, err
	}
	if maxSize > 0 && int64(len(b)) > maxSize {
		return nil, fmt.Errorf("blob %s: %d bytes, limit %d: %w", d, len(b), maxSize, store.ErrTooLarge)
	}
	if err := store.VerifyBytes(d, b); err != nil {
		return nil, err
	}
	return bytes.Clone(b), nil
}

// Open implements store.Reader.
func (s *Store) Open(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	b, err := s.get(d)
	if err != nil {
		return nil, err
	}
	return store.VerifyReader(io.NopCloser(bytes.NewReader(b)), d, -1), nil
}

// ReadRange implements store.RangeReader.
func (s *Store) ReadRange(ctx context.Context, d digest.Digest, offset, length int64) ([]byte, error) {
	b, err := s.get(d)
	if err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("blob %s: invalid range %d+%d", d, offset, length)
	}
	if offset+length > int64(len(b)) || offset+length < 0 {
		return nil, fmt.Errorf("blob %s: range %d+%d beyond size %d: %w", d, offset, length, len(b), io.ErrUnexpectedEOF)
	}
	return bytes.Clone(b[offset : offset+length]), nil
}

// PutBlob implements store.Writer.
func (s *Store) PutBlob(ctx context.Context, d digest.Digest, data []byte) error {
	if err := store.CheckDigest(d); err != nil {
		return err
	}
	if err := store.VerifyBytes(d, data); err != nil {
		return err
	}
	s.put(d, bytes.Clone(data))
	return nil
}

func (s *Store) put(d digest.Digest, b []byte) {
	s.mu.Lock()
	s.blobs[d] = b
	s.mu.Unlock()
}

// WriteBlob implements store.Writer. Like the local store it does not
// read r when the blob is already stored.
func (s *Store) WriteBlob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	if err := store.CheckDigest(d); err != nil {
		return err
	}
	if _, err := s.get(d); err == nil {
		return nil
	}
	data, err := io.ReadAll(store.VerifyReader(io.NopCloser(r), d, size))
	if err != nil {
		return err
	}
	s.put(d, data)
	return nil
}

// ListBlobs implements store.Lister. fn runs on a snapshot, without the
// store's lock, so it may call back into the store.
func (s *Store) ListBlobs(ctx context.Context, fn func(store.Info) error) error {
	s.mu.RLock()
	infos := make([]store.Info, 0, len(s.blobs))
	for d, b := range s.blobs {
		infos = append(infos, store.Info{Digest: d, Size: int64(len(b))})
	}
	s.mu.RUnlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Digest < infos[j].Digest })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// DeleteBlob implements store.Lister.
func (s *Store) DeleteBlob(ctx context.Context, d digest.Digest) error {
	if err := store.CheckDigest(d); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.blobs, d)
	s.mu.Unlock()
	return nil
}

// Corrupt replaces the stored bytes of d with data without verification, so
// tests can check that readers detect corruption. It fails with ErrNotFound
// when d is not stored.
func (s *Store) Corrupt(ctx context.Context, d digest.Digest, data []byte) error {
	if _, err := s.get(d); err != nil {
		return err
	}
	s.put(d, bytes.Clone(data))
	return nil
}
