package exporter

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
)

// State is what every export of one daemon shares: the store and its frame
// index (which frames the store holds, so that unchanged frames are reused
// without being compressed again). The index is opened once (from the
// store's index files, SPEC.md §8.2; by a scan of every image with
// index.InMemory) and refreshed before each export.
//
// The daemon's own collection (Maintain) runs with no export and drops the
// index afterwards. A collection by another process (`oci2 gc` beside the
// daemon) rewrites the index files, which Refresh reads again; a frame the
// index still offers is used only after a stat shows its blobs present, and
// each export checks the frames it named (checkFrames).
type State struct {
	Store store.LocalStore
	opts  []index.Option // of the index

	mu      sync.RWMutex // exports share it; Maintain holds it exclusively
	index   *index.Index
	exports atomic.Int64
}

// Exports counts the exports that completed since the daemon started.
func (s *State) Exports() int64 { return s.exports.Load() }

// NewState returns the shared state over st; opts configure its index
// (by default in the store's index files, so a restarted daemon does not
// scan the store again).
func NewState(st store.LocalStore, opts ...index.Option) *State {
	return &State{Store: st, opts: opts}
}

// acquire returns the refreshed frame index; release must be called when the
// export is done with it.
func (s *State) acquire(ctx context.Context) (*index.Index, func(), error) {
	s.mu.RLock()
	idx := s.index
	if idx == nil {
		s.mu.RUnlock()
		s.mu.Lock()
		if s.index == nil {
			x, err := index.New(ctx, s.Store, s.opts...)
			if err != nil {
				s.mu.Unlock()
				return nil, nil, fmt.Errorf("indexing store: %w", err)
			}
			s.index = x
		}
		s.mu.Unlock()
		return s.acquire(ctx)
	}
	if err := idx.Refresh(ctx); err != nil {
		s.mu.RUnlock()
		return nil, nil, err
	}
	return idx, s.mu.RUnlock, nil
}

// Maintain runs fn (garbage collection) while no export runs, then drops
// the frame index, which may name frames fn deleted.
func (s *State) Maintain(ctx context.Context, fn func(context.Context) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		if s.index != nil {
			s.index.Close()
		}
		s.index = nil
	}()
	return fn(ctx)
}

// Read runs fn while no collection (Maintain) runs: blobs fn reads (a base
// image being unpacked into a build) are not deleted under it.
func (s *State) Read(fn func() error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fn()
}

// WithIndex runs fn with the refreshed frame index, while no collection
// runs: a pull into the store (a build's base) shares the index with the
// exports, and what it stores is not collected under it.
func (s *State) WithIndex(ctx context.Context, fn func(*index.Index) error) error {
	idx, release, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	return fn(idx)
}
