package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
)

// unitsDir holds unit descriptors: oci2/units/<hex of the unit blob's
// sha256>. The store only keeps them; package store/index defines what they
// hold (SPEC.md §8).
const unitsDir = "oci2/units"

// maxUnitDescriptor bounds a descriptor read back (a pack index of one frame).
const maxUnitDescriptor = 16 << 20

func (s *Store) unitPath(d digest.Digest) string {
	return s.path(unitsDir + "/" + d.Encoded())
}

// PutUnit stores the descriptor of unit blob d, replacing any previous one.
// Like a blob it is written to a temp file and renamed into place, and it is
// made durable by the next Sync (every SetRef), so a ref never names an
// image whose units a power loss could take away.
func (s *Store) PutUnit(ctx context.Context, d digest.Digest, desc []byte) error {
	if err := checkSHA256(d); err != nil {
		return err
	}
	if err := os.MkdirAll(s.path(unitsDir), 0o755); err != nil {
		return fmt.Errorf("write unit %s: %w", d, err)
	}
	f, err := s.createTemp()
	if err != nil {
		return fmt.Errorf("write unit %s: %w", d, err)
	}
	tmp := f.Name()
	_, err = f.Write(desc)
	if err == nil {
		err = os.Rename(tmp, s.unitPath(d))
	}
	f.Close() // releases the temp file's lock
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write unit %s: %w", d, err)
	}
	s.markWritten(s.unitPath(d))
	return nil
}

// ReadUnit returns the descriptor of unit d, or an error wrapping
// store.ErrNotFound.
func (s *Store) ReadUnit(ctx context.Context, d digest.Digest) ([]byte, error) {
	if err := checkSHA256(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.unitPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("unit %s: %w", d, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("unit %s: %w", d, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("unit %s: %w", d, err)
	}
	if fi.Size() > maxUnitDescriptor {
		return nil, fmt.Errorf("unit %s: descriptor of %d bytes: %w", d, fi.Size(), store.ErrTooLarge)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("unit %s: %w", d, err)
	}
	return b, nil
}

// ListUnits returns the digests of every unit descriptor, sorted. Files whose
// name is not a sha256 hex digest are ignored.
func (s *Store) ListUnits(ctx context.Context) ([]digest.Digest, error) {
	entries, err := os.ReadDir(s.path(unitsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list units: %w", err)
	}
	out := make([]digest.Digest, 0, len(entries))
	for _, e := range entries {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if checkSHA256(d) == nil && e.Type().IsRegular() {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// DeleteUnit removes the descriptor of unit d; a missing one is not an error.
func (s *Store) DeleteUnit(ctx context.Context, d digest.Digest) error {
	if err := checkSHA256(d); err != nil {
		return err
	}
	if err := os.Remove(s.unitPath(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete unit %s: %w", d, err)
	}
	s.markRemoved(s.unitPath(d))
	return nil
}

func checkSHA256(d digest.Digest) error { return store.CheckDigest(d) }
