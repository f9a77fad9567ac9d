package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/store"
)

// A write goes to a temp file in oci2/ingest, holding an exclusive flock on
// it so CleanIngest can tell live temp files from those of dead processes;
// it is checked (size, digest) and renamed into blobs/sha256. A blob already
// stored (with the right size) is success.
//
// Durability is batched (sync.go): instead of two fsyncs per blob (file
// and directory, a journal commit each, which dominated writing thousands
// of frames), the store makes what it wrote durable once before any ref
// changes (SetRef, Sync). A ref therefore never names a blob that a power
// loss could take away, and a process killed at any point loses nothing,
// since the page cache survives it. After a power loss an unreferenced blob may be short; has()
// compares sizes, so it is rewritten, and gc removes it. A blob found stored
// already is recorded for the next Sync too (see Keep): another process may
// have written it and died before syncing.

// has reports whether d is stored with the given size (any size when < 0),
// and if so records it for the next Sync (see Keep). A stored file of
// another size is damaged and gets replaced.
func (s *Store) has(d digest.Digest, size int64) bool {
	p := s.blobPath(d)
	fi, err := os.Stat(p)
	if err == nil && (size < 0 || fi.Size() == size) {
		s.markKept(p)
		return true
	}
	return false
}

// PutBlob implements store.Writer.
func (s *Store) PutBlob(ctx context.Context, d digest.Digest, data []byte) error {
	if err := store.CheckDigest(d); err != nil {
		return err
	}
	if err := store.VerifyBytes(d, data); err != nil {
		return err
	}
	if s.has(d, int64(len(data))) {
		return nil
	}
	return s.ingest(ctx, d, int64(len(data)), bytes.NewReader(data), true)
}

// PutHashedBlob is PutBlob for bytes the caller has just hashed to d itself
// (a frame the Packer encoded and digested): it does not hash them again.
// Bytes of any other origin go through PutBlob.
func (s *Store) PutHashedBlob(ctx context.Context, d digest.Digest, data []byte) error {
	if err := store.CheckDigest(d); err != nil {
		return err
	}
	if s.has(d, int64(len(data))) {
		return nil
	}
	return s.ingest(ctx, d, int64(len(data)), bytes.NewReader(data), true)
}

// WriteBlob implements store.Writer. r is not read when the blob is
// already stored.
func (s *Store) WriteBlob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	if err := store.CheckDigest(d); err != nil {
		return err
	}
	if s.has(d, size) {
		return nil
	}
	return s.ingest(ctx, d, size, r, false)
}

// ingest writes r as blob d. verified says r's bytes were hashed already.
func (s *Store) ingest(ctx context.Context, d digest.Digest, size int64, r io.Reader, verified bool) error {
	if s.unnamedSupported() {
		if err := s.ingestUnnamed(ctx, d, size, r, verified); err != nil {
			return fmt.Errorf("write blob %s: %w", d, err)
		}
		s.markWritten(s.blobPath(d))
		return nil
	}
	f, err := s.createTemp()
	if err != nil {
		return fmt.Errorf("write blob %s: %w", d, err)
	}
	tmp := f.Name()
	err = writeVerified(ctx, f, d, size, r, verified)
	if err == nil {
		err = f.Chmod(0o444)
	}
	if err == nil {
		err = os.Rename(tmp, s.blobPath(d))
	}
	f.Close() // releases the temp file's lock
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write blob %s: %w", d, err)
	}
	s.markWritten(s.blobPath(d))
	return nil
}

// createTemp creates a temp file in oci2/ingest and locks it. If CleanIngest
// removed the file between creation and locking, it tries again.
func (s *Store) createTemp() (*os.File, error) {
	for {
		f, err := os.CreateTemp(s.path(ingestDir), "blob-*")
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			os.Remove(f.Name())
			if errors.Is(err, unix.EWOULDBLOCK) { // CleanIngest is looking at it
				continue
			}
			return nil, fmt.Errorf("lock temp file: %w", err)
		}
		if sameFile(f, f.Name()) {
			return f, nil
		}
		f.Close()
	}
}

// writeVerified copies r to f, hashing (unless verified) and counting (no
// fsync: see Sync). It fails with ErrSizeMismatch or ErrDigestMismatch when r does
// not hold d.
func writeVerified(ctx context.Context, f *os.File, d digest.Digest, size int64, r io.Reader, verified bool) error {
	if br, ok := r.(*bytes.Reader); ok && verified {
		// Bytes in memory, hashed already: one write, no buffers.
		if n := br.Len(); size >= 0 && int64(n) != size {
			return fmt.Errorf("stream has %d bytes, want %d: %w", n, size, store.ErrSizeMismatch)
		}
		_, err := br.WriteTo(f)
		return err
	}
	h := d.Algorithm().Hash()
	var dst io.Writer = f
	if !verified {
		dst = io.MultiWriter(f, h)
	}
	w := bufio.NewWriterSize(dst, 256<<10)
	buf := make([]byte, 64<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := r.Read(buf)
		n += int64(m)
		if size >= 0 && n > size {
			return fmt.Errorf("stream longer than %d bytes: %w", size, store.ErrSizeMismatch)
		}
		w.Write(buf[:m]) // errors are sticky and returned by Flush
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading: %w", err)
		}
	}
	if size >= 0 && n != size {
		return fmt.Errorf("stream has %d bytes, want %d: %w", n, size, store.ErrSizeMismatch)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if got := digest.NewDigest(d.Algorithm(), h); !verified && got != d {
		return fmt.Errorf("content hashes to %s: %w", got, store.ErrDigestMismatch)
	}
	return nil
}

// CleanIngest removes temp files of writes whose process died (their flock
// is gone) and returns how many it removed. Temp files of live writers, in
// this or another process, are left alone.
func (s *Store) CleanIngest(ctx context.Context) (int, error) {
	dir := s.path(ingestDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("clean ingest: %w", err)
	}
	removed := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue // gone meanwhile
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil && sameFile(f, p) {
			if err := os.Remove(p); err == nil {
				removed++
			}
		}
		f.Close()
	}
	return removed, nil
}
