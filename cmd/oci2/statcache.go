package main

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/oci2/oci2/image/writer"
)

// statCacheFile is the writer's stat cache of source files, kept in
// <store>/oci2/cache/files: the writer keeps each source directory's entries
// in a file of its own under files.d. Concurrent creates of one directory each
// save their own view; the last rename wins, which only costs the loser's
// entries a re-read next time.
type statCacheFile struct {
	path string
	c    *writer.StatCache
}

// openStatCache loads the store's stat cache. A damaged cache gives an
// empty one and an error the caller reports as a warning.
func openStatCache(st *storeHandle) (*statCacheFile, error) {
	dir := st.cacheDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "files")
	c, err := writer.LoadStatCache(path)
	if err != nil && !errors.Is(err, writer.ErrCorruptCache) {
		return nil, err
	}
	return &statCacheFile{path: path, c: c}, err
}

func (f *statCacheFile) cache() *writer.StatCache {
	if f == nil {
		return nil
	}
	return f.c
}

func (f *statCacheFile) save() error {
	if f == nil {
		return nil
	}
	return f.c.Save(f.path)
}
