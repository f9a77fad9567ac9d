package blobdir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
)

// Dir is a read-only store.Reader and store.RangeReader over a directory of
// blob files. It never writes: the directory may be a read-only mount.
type Dir struct {
	dir string
}

var (
	_ store.Reader      = (*Dir)(nil)
	_ store.RangeReader = (*Dir)(nil)
)

// New returns the reader of dir (DIR/<algorithm>/<encoded digest>).
func New(dir string) *Dir { return &Dir{dir: dir} }

// open opens a blob file and returns its size.
func (d *Dir) open(dg digest.Digest) (*os.File, int64, error) {
	if err := store.CheckDigest(dg); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(filepath.Join(d.dir, string(dg.Algorithm()), dg.Encoded()))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("blob %s: %w", dg, store.ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blob %s: %w", dg, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("blob %s: %w", dg, err)
	}
	return f, fi.Size(), nil
}

// Stat implements store.Reader.
func (d *Dir) Stat(ctx context.Context, dg digest.Digest) (store.Info, error) {
	f, size, err := d.open(dg)
	if err != nil {
		return store.Info{}, err
	}
	f.Close()
	return store.Info{Digest: dg, Size: size}, nil
}

// ReadBlob implements store.Reader: the whole file, verified.
func (d *Dir) ReadBlob(ctx context.Context, dg digest.Digest, maxSize int64) ([]byte, error) {
	f, size, err := d.open(dg)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if maxSize > 0 && size > maxSize {
		return nil, fmt.Errorf("blob %s: %d bytes, limit %d: %w", dg, size, maxSize, store.ErrTooLarge)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("blob %s: %w", dg, err)
	}
	if err := store.VerifyBytes(dg, b); err != nil {
		return nil, err
	}
	return b, nil
}

// Open implements store.Reader; the reader verifies the digest at EOF.
func (d *Dir) Open(ctx context.Context, dg digest.Digest) (io.ReadCloser, error) {
	f, _, err := d.open(dg)
	if err != nil {
		return nil, err
	}
	return store.VerifyReader(f, dg, -1), nil
}

// ReadRange implements store.RangeReader (unverified: the caller checks
// each frame against the pack index).
func (d *Dir) ReadRange(ctx context.Context, dg digest.Digest, offset, length int64) ([]byte, error) {
	f, size, err := d.open(dg)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if offset < 0 || length < 0 || offset+length < 0 {
		return nil, fmt.Errorf("blob %s: invalid range %d+%d", dg, offset, length)
	}
	if offset+length > size {
		return nil, fmt.Errorf("blob %s: range %d+%d beyond size %d: %w", dg, offset, length, size, io.ErrUnexpectedEOF)
	}
	b := make([]byte, length)
	if _, err := f.ReadAt(b, offset); err != nil && !(err == io.EOF && length == 0) {
		return nil, fmt.Errorf("blob %s: reading %d+%d: %w", dg, offset, length, err)
	}
	return b, nil
}
