package memstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/oci2/oci2/store"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ListRefs implements store.Refs.
func (s *Store) ListRefs(ctx context.Context) ([]store.Ref, error) {
	s.mu.RLock()
	refs := make([]store.Ref, 0, len(s.refs))
	for name, desc := range s.refs {
		refs = append(refs, store.Ref{Name: name, Descriptor: cloneDescriptor(desc)})
	}
	s.mu.RUnlock()
	sort.Slice(refs, func(i, j int) bool { return refs[i].Name < refs[j].Name })
	return refs, nil
}

// ListRoots implements store.RootLister: every entry of a memory store is
// a ref.
func (s *Store) ListRoots(ctx context.Context) ([]store.Ref, error) {
	return s.ListRefs(ctx)
}

// GetRef implements store.Refs.
func (s *Store) GetRef(ctx context.Context, name string) (ocispec.Descriptor, error) {
	s.mu.RLock()
	desc, ok := s.refs[name]
	s.mu.RUnlock()
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("ref %q: %w", name, store.ErrNotFound)
	}
	return cloneDescriptor(desc), nil
}

// SetRef implements store.Refs. The target blob must be stored with
// the descriptor's size.
func (s *Store) SetRef(ctx context.Context, name string, desc ocispec.Descriptor) error {
	if err := store.CheckRefTarget(ctx, s, name, desc); err != nil {
		return err
	}
	s.mu.Lock()
	s.refs[name] = cloneDescriptor(desc)
	s.mu.Unlock()
	return nil
}

// DeleteRef implements store.Refs.
func (s *Store) DeleteRef(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refs[name]; !ok {
		return fmt.Errorf("ref %q: %w", name, store.ErrNotFound)
	}
	delete(s.refs, name)
	return nil
}

// cloneDescriptor copies every reference-typed field so callers never share
// memory with the store.
func cloneDescriptor(d ocispec.Descriptor) ocispec.Descriptor {
	d.URLs = slices.Clone(d.URLs)
	d.Annotations = maps.Clone(d.Annotations)
	d.Data = slices.Clone(d.Data)
	if d.Platform != nil {
		p := *d.Platform
		p.OSFeatures = slices.Clone(p.OSFeatures)
		d.Platform = &p
	}
	return d
}
