package writer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// A stat cache saved at path keeps each source directory's entries in its
// own file, path+".d/<hash of the directory>", in the format of the single
// file (one directory). A create reads and writes only the files of the
// directories it reads, so its cost does not follow every tree the store
// was ever created from (in one file: 7.5 MB read and rewritten with an
// fsync by every create in a store of five distro trees). The single file
// at path, from before, is still read, lazily; the first save moves its
// directories to their own files and leaves path an empty cache (the mark
// that the cache exists, for tools that look for it).

// perDir is the StatCache's state of per-directory files (guarded by mu).
type perDir struct {
	path       string           // loaded from or last saved to ("" none)
	single     bool             // path is a single file to empty (its sections move)
	dirWritten map[string]int64 // the save that wrote a directory's own file
	dirty      map[string]bool  // recorded since the last save
	tried      map[string]bool  // own file looked for
}

func newPerDir() perDir {
	return perDir{dirWritten: map[string]int64{}, dirty: map[string]bool{}, tried: map[string]bool{}}
}

// dirFile is the file of source directory dir in the cache at path.
func dirFile(path, dir string) string {
	h := sha256.Sum256([]byte(dir))
	return filepath.Join(path+".d", hex.EncodeToString(h[:16]))
}

// loadDirLocked reads dir's own file once; a missing or damaged one, or one
// of another directory, gives false.
func (c *StatCache) loadDirLocked(dir string) (map[string]cacheEntry, bool) {
	if c.path == "" || c.tried[dir] {
		return nil, false
	}
	c.tried[dir] = true
	b, err := os.ReadFile(dirFile(c.path, dir))
	if err != nil {
		return nil, false
	}
	one := NewStatCache()
	if one.decode(b) != nil {
		return nil, false
	}
	sec, ok := one.sections[dir]
	if !ok || len(one.sections) != 1 {
		return nil, false
	}
	m, err := decodeSection(sec)
	if err != nil {
		return nil, false
	}
	delete(c.sections, dir) // the own file is newer
	c.dirs[dir] = m
	c.dirWritten[dir] = one.written
	return m, true
}

// writtenLocked is when the entries of dir were saved (0: never).
func (c *StatCache) writtenLocked(dir string) int64 {
	if w, ok := c.dirWritten[dir]; ok {
		return w
	}
	return c.written
}

// saveDirs writes the file of each directory recorded since the last save,
// and moves the single file's directories to their own files.
func (c *StatCache) saveDirs(path string) error {
	c.mu.Lock()
	now := time.Now().UnixNano()
	files := map[string][]byte{}
	for dir := range c.dirty {
		one := NewStatCache()
		one.dirs[dir] = c.dirs[dir]
		files[dirFile(path, dir)] = one.encode(now)
	}
	moved := map[string][]byte{}
	if c.single {
		for dir, sec := range c.sections {
			one := NewStatCache()
			one.sections[dir] = sec
			moved[dirFile(path, dir)] = one.encode(c.written)
		}
		for dir, m := range c.dirs { // decoded from the single file
			if _, own := c.dirWritten[dir]; !own && !c.dirty[dir] {
				one := NewStatCache()
				one.dirs[dir] = m
				moved[dirFile(path, dir)] = one.encode(c.written)
			}
		}
	}
	_, err := os.Stat(path)
	mark := c.single || errors.Is(err, os.ErrNotExist)
	dirty := c.dirty
	c.dirty = map[string]bool{}
	c.mu.Unlock()

	if err := os.MkdirAll(path+".d", 0o700); err != nil {
		return err
	}
	for p, b := range files {
		if err := writeFileAtomic(p, b); err != nil {
			return err
		}
	}
	for p, b := range moved {
		// A file another create wrote meanwhile is newer than the section.
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			if err := writeFileAtomic(p, b); err != nil {
				return err
			}
		}
	}
	if mark {
		if err := writeFileAtomic(path, NewStatCache().encode(now)); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.path, c.single = path, false
	for dir := range dirty {
		c.dirWritten[dir] = now
		c.tried[dir] = true
	}
	return nil
}
