package index

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
)

// Index files live in one directory (the local store's oci2/index, see
// local.Store.IndexDir), named <32 hex>.idx; each process adds its own and
// only compaction and gc remove them.
const (
	tableExt    = ".idx"
	tmpPrefix   = ".tmp-"
	compactLock = "compact.lock"
	// maxTables is the number of index files above which a writer merges
	// the small ones (see pickMerge).
	maxTables = 8
	// mergeFloor is the size under which index files merge as equals.
	mergeFloor = 1 << 20
)

func newTableName() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("index: reading random bytes: %v", err))
	}
	return hex.EncodeToString(b[:]) + tableExt
}

// listTables returns the names of the index files in dir, sorted.
func listTables(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		if n := e.Name(); strings.HasSuffix(n, tableExt) && !strings.HasPrefix(n, tmpPrefix) && e.Type().IsRegular() {
			out = append(out, n)
		}
	}
	return out, nil
}

// openTables opens the index files of dir not in have. A file that fails
// its checks is removed and reported in bad (what it covered is scanned
// again); one that vanished meanwhile (merged by another process) is
// skipped.
func openTables(dir string, have map[string]bool) (tabs []*table, bad []string, err error) {
	tabs, bad, err = readTables(dir, have)
	for _, n := range bad {
		os.Remove(filepath.Join(dir, n))
	}
	return tabs, bad, err
}

// readTables is openTables without removing the files that fail.
func readTables(dir string, have map[string]bool) (tabs []*table, bad []string, err error) {
	names, err := listTables(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("listing index files: %w", err)
	}
	for _, n := range names {
		if have[n] {
			continue
		}
		t, err := openTable(filepath.Join(dir, n))
		switch {
		case err == nil:
			tabs = append(tabs, t)
		case errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, errCorrupt):
			bad = append(bad, n)
		default:
			closeTables(tabs)
			return nil, nil, err
		}
	}
	return tabs, bad, nil
}

func closeTables(tabs []*table) {
	for _, t := range tabs {
		t.close()
	}
}

// RemoveFiles removes the index files of dir: the next Index opened on dir
// scans the store and writes them again (oci2 check --repair).
func RemoveFiles(dir string) error {
	if err := removeTables(dir); err != nil {
		return fmt.Errorf("removing index files: %w", err)
	}
	return nil
}

// removeTables removes every index file and leftover temporary file of dir.
func removeTables(dir string) error {
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range es {
		if n := e.Name(); strings.HasSuffix(n, tableExt) || strings.HasPrefix(n, tmpPrefix) {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// pickMerge chooses the index files to merge, or none: the smallest ones,
// each next one taken while it is at most twice the size of those taken
// (files under mergeFloor count as equal), so that a merge costs about what
// the small files hold and a big file is rewritten only once as much grew
// beside it (size-tiered compaction: the number of files stays about
// logarithmic in the index's size). Past 4*maxTables files the two smallest
// are merged whatever their sizes.
func pickMerge(tabs []*table) []*table {
	s := slices.Clone(tabs)
	slices.SortFunc(s, func(a, b *table) int { return cmp.Compare(a.size, b.size) })
	sum, k := s[0].size, 1
	for k < len(s) && s[k].size <= max(2*sum, mergeFloor) {
		sum += s[k].size
		k++
	}
	if k < 2 && len(s) > 4*maxTables {
		k = 2
	}
	if k < 2 {
		return nil
	}
	return s[:k]
}

// lockDir takes the exclusive flock serializing merges of dir's files; with
// wait unset it reports false when another process holds it.
func lockDir(ctx context.Context, dir string, wait bool) (func(), bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, compactLock), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return func() { f.Close() }, true, nil
		case errors.Is(err, unix.EINTR):
			continue
		case !errors.Is(err, unix.EWOULDBLOCK) || !wait:
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, false, nil
			}
			return nil, false, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, false, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Rewrite replaces the index files of dir by one that holds only what
// names blobs keep reports still stored. Garbage collection calls it after
// deleting blobs, with the store exclusively locked, so that no index
// offers what it deleted.
func Rewrite(ctx context.Context, dir string, keep func(format.ChunkID) bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("rewriting index: %w", err)
	}
	unlock, _, err := lockDir(ctx, dir, true)
	if err != nil {
		return fmt.Errorf("rewriting index: %w", err)
	}
	defer unlock()
	tabs, bad, err := openTables(dir, nil)
	if err != nil {
		return fmt.Errorf("rewriting index: %w", err)
	}
	defer closeTables(tabs)
	if len(bad) > 0 {
		// Coverage is lost: the next command scans the store again.
		return removeTables(dir)
	}
	if len(tabs) == 0 {
		return nil
	}
	t, err := merge(dir, tabs, keep)
	if err != nil {
		if errors.Is(err, errCorrupt) {
			return removeTables(dir)
		}
		return fmt.Errorf("rewriting index: %w", err)
	}
	t.close()
	for _, o := range tabs {
		if err := os.Remove(filepath.Join(dir, o.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rewriting index: %w", err)
		}
	}
	return nil
}

func le64(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }
