package local

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeFileAtomic writes data to tmp, fsyncs it and renames it to dst, then
// fsyncs the directory: readers see the old file or the new one, never a
// partial one, and the new one survives a crash once this returns. tmp must
// be private to the caller (held under a lock, or unique).
func writeFileAtomic(tmp, dst string, data []byte) error {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", filepath.Base(dst), err)
	}
	return syncDir(filepath.Dir(dst))
}

// syncDir makes the directory's entries (a rename) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// sameFile reports whether path still names the file open as f.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}
