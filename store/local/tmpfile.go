package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Blobs are written, where the filesystem allows, to an unnamed file
// (O_TMPFILE) in the blob's directory and linked under the blob's name once
// complete. Compared with a named temp file in oci2/ingest, that saves per
// blob: the flock CleanIngest needs, the two stats checking the lock is on
// the named file, the fchmod (the file is created read-only), and a
// cross-directory rename (which takes both directories' locks and the
// filesystem's rename lock). The inode is allocated without the directory
// lock, so concurrent writers no longer spin on it. A crash leaves nothing
// behind: an unnamed file disappears with its last descriptor.
//
// Linking needs /proc (linkat of /proc/self/fd/N); the store probes once and
// falls back to the ingest directory when the probe fails.

// unnamedSupported reports, once per Store, whether unnamed files can be
// created in the blob directory and linked into the store.
func (s *Store) unnamedSupported() bool {
	s.unnamedOnce.Do(func() {
		f, err := openUnnamed(s.path(blobsDir + "/sha256"))
		if err != nil {
			return
		}
		defer f.Close()
		name, err := s.linkIntoIngest(f, "probe-")
		if err != nil {
			return
		}
		os.Remove(name)
		s.unnamedOK = true
	})
	return s.unnamedOK
}

// openUnnamed creates an unnamed read-only file in dir, open for writing.
func openUnnamed(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_WRONLY|unix.O_TMPFILE|unix.O_CLOEXEC, 0o444)
	if err != nil {
		return nil, &os.PathError{Op: "open O_TMPFILE", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir+"/(unnamed)"), nil
}

// link gives the unnamed file f the name dst. It fails with an error
// wrapping fs.ErrExist when dst exists.
func link(f *os.File, dst string) error {
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())),
		unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: dst, Err: err}
	}
	return nil
}

// linkIntoIngest names the unnamed file f in oci2/ingest under a new name
// and returns that name. f is locked first, so CleanIngest leaves the name
// alone while f is open.
func (s *Store) linkIntoIngest(f *os.File, prefix string) (string, error) {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return "", fmt.Errorf("lock temp file: %w", err)
	}
	dir := s.path(ingestDir)
	for range 100 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(rand.Uint64(), 36))
		err := link(f, name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("no free temp name in %s", dir)
}

// ingestUnnamed writes r as blob d through an unnamed file.
func (s *Store) ingestUnnamed(ctx context.Context, d digest.Digest, size int64, r io.Reader, verified bool) error {
	dst := s.blobPath(d)
	f, err := openUnnamed(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := writeVerified(ctx, f, d, size, r, verified); err != nil {
		return err
	}
	err = link(f, dst)
	if err == nil || !errors.Is(err, os.ErrExist) {
		return err
	}
	// Stored meanwhile by another writer, or a damaged file to replace.
	if s.has(d, size) {
		return nil
	}
	name, err := s.linkIntoIngest(f, "blob-")
	if err != nil {
		return err
	}
	if err := os.Rename(name, dst); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}
