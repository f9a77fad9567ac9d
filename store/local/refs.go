package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/store"
)

// Refs live in index.json as the descriptors of manifests[], each annotated
// with org.opencontainers.image.ref.name. Readers parse the file without a
// lock (it is only ever replaced by rename); writers read, modify and write
// it under an exclusive flock on oci2/index.lock. Entries without a name
// (written by other tools) are kept but are not refs.
//
// A name that several entries carry (index.json written by another tool)
// means the first of them, as skopeo (containers/image) reads it; umoci
// refuses such a name as ambiguous. The later entries are shadowed: not
// refs, but kept, and GC keeps what they reach (ListRoots), so index.json
// never names a deleted blob. SetRef and DeleteRef replace or remove every
// entry of the name.

func emptyIndex() ocispec.Index {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	return idx
}

func (s *Store) readIndex() (ocispec.Index, error) {
	b, err := os.ReadFile(s.path(indexFile))
	if err != nil {
		return ocispec.Index{}, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return ocispec.Index{}, fmt.Errorf("parsing %s: %w", indexFile, err)
	}
	if idx.SchemaVersion != 2 {
		return ocispec.Index{}, fmt.Errorf("%s: schemaVersion %d, want 2", indexFile, idx.SchemaVersion)
	}
	return idx, nil
}

// writeIndex replaces index.json; the caller holds the index lock.
func (s *Store) writeIndex(idx ocispec.Index) error {
	// Named entries sorted by name; unnamed (foreign) ones first, in order.
	slices.SortStableFunc(idx.Manifests, func(a, b ocispec.Descriptor) int {
		return strings.Compare(refName(a), refName(b))
	})
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(idx); err != nil {
		return err
	}
	return writeFileAtomic(s.path(indexTemp), s.path(indexFile), buf.Bytes())
}

// updateIndex runs fn on the current index under the index lock and writes
// the result when fn returns nil.
func (s *Store) updateIndex(ctx context.Context, fn func(*ocispec.Index) error) error {
	s.refMu.Lock()
	defer s.refMu.Unlock()
	lock, err := lockFile(ctx, s.path(indexLock), unix.LOCK_EX, true)
	if err != nil {
		return err
	}
	defer lock.Close()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(&idx); err != nil {
		return err
	}
	return s.writeIndex(idx)
}

// ensureIndex creates an empty index.json unless one exists.
func (s *Store) ensureIndex() error {
	if _, err := s.readIndex(); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	s.refMu.Lock()
	defer s.refMu.Unlock()
	lock, err := lockFile(context.Background(), s.path(indexLock), unix.LOCK_EX, true)
	if err != nil {
		return err
	}
	defer lock.Close()
	if _, err := s.readIndex(); !errors.Is(err, fs.ErrNotExist) {
		return err // created meanwhile, or unreadable
	}
	return s.writeIndex(emptyIndex())
}

func refName(d ocispec.Descriptor) string { return d.Annotations[ocispec.AnnotationRefName] }

// asRef returns the descriptor a caller gave SetRef: without the name annotation.
func asRef(d ocispec.Descriptor) store.Ref {
	name := refName(d)
	delete(d.Annotations, ocispec.AnnotationRefName)
	if len(d.Annotations) == 0 {
		d.Annotations = nil
	}
	return store.Ref{Name: name, Descriptor: d}
}

// ListRefs implements store.Refs, sorted by name. When a foreign
// index.json names a ref twice, the first entry wins, as it does for GetRef.
func (s *Store) ListRefs(ctx context.Context) ([]store.Ref, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, fmt.Errorf("list refs: %w", err)
	}
	var refs []store.Ref
	seen := map[string]bool{}
	for _, d := range idx.Manifests {
		if name := refName(d); name != "" && !seen[name] {
			seen[name] = true
			refs = append(refs, asRef(d))
		}
	}
	slices.SortStableFunc(refs, func(a, b store.Ref) int { return strings.Compare(a.Name, b.Name) })
	return refs, nil
}

// ListRoots implements store.RootLister: every entry of index.json in file
// order, as refs whose Name is "" for an entry without a name and repeats
// for a name several entries carry: what GC must keep for the layout to
// stay valid.
func (s *Store) ListRoots(ctx context.Context) ([]store.Ref, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, fmt.Errorf("list index entries: %w", err)
	}
	roots := make([]store.Ref, 0, len(idx.Manifests))
	for _, d := range idx.Manifests {
		roots = append(roots, asRef(d))
	}
	return roots, nil
}

// GetRef implements store.Refs: the first entry carrying name.
func (s *Store) GetRef(ctx context.Context, name string) (ocispec.Descriptor, error) {
	idx, err := s.readIndex()
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("ref %q: %w", name, err)
	}
	for _, d := range idx.Manifests {
		if name != "" && refName(d) == name {
			return asRef(d).Descriptor, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("ref %q: %w", name, store.ErrNotFound)
}

// SetRef implements store.Refs. An org.opencontainers.image.ref.name
// annotation in desc is replaced by name.
func (s *Store) SetRef(ctx context.Context, name string, desc ocispec.Descriptor) error {
	if err := store.CheckRefTarget(ctx, s, name, desc); err != nil {
		return err
	}
	s.markKept(s.blobPath(desc.Digest)) // stored, perhaps, by a process that died before syncing
	if err := s.Sync(ctx); err != nil {
		return fmt.Errorf("set ref %q: %w", name, err)
	}
	desc.Annotations = maps.Clone(desc.Annotations)
	if desc.Annotations == nil {
		desc.Annotations = map[string]string{}
	}
	desc.Annotations[ocispec.AnnotationRefName] = name
	return s.updateIndex(ctx, func(idx *ocispec.Index) error {
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return refName(d) == name })
		idx.Manifests = append(idx.Manifests, desc)
		return nil
	})
}

// DeleteRef implements store.Refs.
func (s *Store) DeleteRef(ctx context.Context, name string) error {
	return s.updateIndex(ctx, func(idx *ocispec.Index) error {
		n := len(idx.Manifests)
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return name != "" && refName(d) == name })
		if len(idx.Manifests) == n {
			return fmt.Errorf("ref %q: %w", name, store.ErrNotFound)
		}
		return nil
	})
}
