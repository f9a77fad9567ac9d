package writer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
)

// readXattrs returns path's extended attributes (not following a symlink),
// sorted by name, values binary-safe and possibly empty. Names that would
// steer overlayfs are refused (SPEC.md §4.2) with a warning.
func readXattrs(path string, warn func(string, error)) ([]format.Xattr, error) {
	list, err := listXattrs(path)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			warn(path, fmt.Errorf("listing xattrs: %w", err))
			return nil, nil
		}
		return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
	}
	if len(list) == 0 {
		return nil, nil
	}
	var xs []format.Xattr
	for _, name := range bytes.Split(bytes.TrimSuffix(list, []byte{0}), []byte{0}) {
		if len(name) == 0 {
			continue
		}
		n := string(name)
		if strings.HasPrefix(n, "trusted.overlay.") || strings.HasPrefix(n, "user.overlay.") {
			warn(path, fmt.Errorf("xattr %s skipped (reserved for overlayfs)", n))
			continue
		}
		v, err := getXattr(path, n)
		switch {
		case errors.Is(err, unix.ENODATA):
			continue // removed meanwhile
		case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
			warn(path, fmt.Errorf("reading xattr %s: %w", n, err))
			continue
		case err != nil:
			return nil, &os.PathError{Op: "lgetxattr " + n, Path: path, Err: err}
		}
		if len(v) > format.MaxXattrValueLen {
			warn(path, fmt.Errorf("xattr %s skipped: value of %d bytes", n, len(v)))
			continue
		}
		xs = append(xs, format.Xattr{Name: n, Value: v})
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].Name < xs[j].Name })
	if len(xs) > format.MaxXattrs {
		return nil, fmt.Errorf("%s: %d xattrs, at most %d", path, len(xs), format.MaxXattrs)
	}
	return xs, nil
}

func listXattrs(path string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Llistxattr(path, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, max(sz, 2*len(buf)))
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Lgetxattr(path, name, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, max(sz, 2*len(buf)))
			continue
		}
		if err != nil {
			return nil, err
		}
		return append([]byte{}, buf[:n]...), nil
	}
}
