package exporter

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/oci2/oci2/format"
)

// The cache file: a magic line, the gob of []cacheRecord, and the sha256 of
// both. A damaged cache must never give a file the wrong extents, so a
// file that does not check out is ignored as a whole.
const cacheFileMagic = "oci2-exporter-filecache-1\n"

type cacheRecord struct {
	Path               string
	Ino                uint64
	Size, Mtime, Ctime int64
	Gen                uint64
	Extents            []format.Extent
}

// Dirty reports whether the cache changed since it was loaded or saved.
func (c *SnapshotFileCache) Dirty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dirty
}

// Save writes the cache to path atomically (temporary file, fsync, rename).
// Snapshots, their inodes and times survive a daemon restart, and so do the
// cache's entries.
func (c *SnapshotFileCache) Save(path string) error {
	c.mu.Lock()
	recs := make([]cacheRecord, 0, len(c.m))
	for k, e := range c.m {
		recs = append(recs, cacheRecord{Path: k.path, Ino: k.ino, Size: k.size, Mtime: k.mtime, Ctime: k.ctime,
			Gen: e.gen, Extents: e.extents})
	}
	c.dirty = false
	c.mu.Unlock()

	var buf bytes.Buffer
	buf.WriteString(cacheFileMagic)
	if err := gob.NewEncoder(&buf).Encode(recs); err != nil {
		return fmt.Errorf("saving files cache: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	if err := writeAtomic(path, buf.Bytes()); err != nil {
		c.mu.Lock()
		c.dirty = true
		c.mu.Unlock()
		return fmt.Errorf("saving files cache: %w", err)
	}
	return nil
}

// LoadSnapshotFileCache reads a cache saved by Save. A missing file gives an empty
// cache; a damaged one an empty cache and an error to report.
func LoadSnapshotFileCache(path string, maxEntries int) (*SnapshotFileCache, error) {
	c := NewSnapshotFileCache(maxEntries)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("loading files cache: %w", err)
	}
	if len(b) < len(cacheFileMagic)+sha256.Size || !bytes.HasPrefix(b, []byte(cacheFileMagic)) {
		return c, fmt.Errorf("loading files cache %s: bad header", path)
	}
	body := b[:len(b)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(body):]) {
		return c, fmt.Errorf("loading files cache %s: checksum mismatch", path)
	}
	var recs []cacheRecord
	if err := gob.NewDecoder(bytes.NewReader(body[len(cacheFileMagic):])).Decode(&recs); err != nil {
		return c, fmt.Errorf("loading files cache %s: %w", path, err)
	}
	for _, r := range recs {
		k := fileKey{path: r.Path, ino: r.Ino, size: r.Size, mtime: r.Mtime, ctime: r.Ctime}
		c.m[k] = cacheEntry{extents: r.Extents, gen: r.Gen}
		c.gen = max(c.gen, r.Gen)
	}
	c.reindex() // level 2 is derived, not saved
	return c, nil
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
