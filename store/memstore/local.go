package memstore

import (
	"context"
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
)

// The roles of a local store (store.LocalStore), so the code written
// for it (units and virtual frames, compaction) runs on a Store too.

var _ store.LocalStore = (*Store)(nil)

// PutHashedBlob implements store.HashedWriter. A memory store is no
// faster for trusting its caller: it verifies the bytes as PutBlob does.
func (s *Store) PutHashedBlob(ctx context.Context, d digest.Digest, data []byte) error {
	return s.PutBlob(ctx, d, data)
}

// Sync implements store.Syncer: memory has nothing to make durable.
func (s *Store) Sync(ctx context.Context) error { return nil }

// Keep implements store.Syncer.
func (s *Store) Keep(ctx context.Context, d digest.Digest) error {
	_, err := s.get(d)
	return err
}

// CleanIngest implements store.IngestCleaner: writes leave no temp
// files in memory.
func (s *Store) CleanIngest(ctx context.Context) (int, error) { return 0, nil }

// PutUnit implements store.Units.
func (s *Store) PutUnit(ctx context.Context, d digest.Digest, desc []byte) error {
	if err := store.CheckDigest(d); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.units[d] = append([]byte(nil), desc...)
	return nil
}

// ReadUnit implements store.Units.
func (s *Store) ReadUnit(ctx context.Context, d digest.Digest) ([]byte, error) {
	if err := store.CheckDigest(d); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.units[d]
	if !ok {
		return nil, fmt.Errorf("unit %s: %w", d, store.ErrNotFound)
	}
	return append([]byte(nil), b...), nil
}

// ListUnits implements store.Units.
func (s *Store) ListUnits(ctx context.Context) ([]digest.Digest, error) {
	s.mu.RLock()
	out := make([]digest.Digest, 0, len(s.units))
	for d := range s.units {
		out = append(out, d)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// DeleteUnit implements store.Units.
func (s *Store) DeleteUnit(ctx context.Context, d digest.Digest) error {
	if err := store.CheckDigest(d); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.units, d)
	return nil
}

// IndexDir implements store.IndexHome: a store in memory has no index
// files; its index is kept in memory by the process that holds it.
func (s *Store) IndexDir() string { return "" }
