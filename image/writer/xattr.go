package writer

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/containerd/continuity/sysx"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
)

// readXattrs returns path's extended attributes (not following a symlink),
// sorted by name, values binary-safe and possibly empty. Names that would
// steer overlayfs are refused (SPEC.md §4.2) with a warning.
func readXattrs(path string, warn func(string, error)) ([]format.Xattr, error) {
	list, err := sysx.LListxattr(path)
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
	for _, n := range list {
		if strings.HasPrefix(n, "trusted.overlay.") || strings.HasPrefix(n, "user.overlay.") {
			warn(path, fmt.Errorf("xattr %s skipped (reserved for overlayfs)", n))
			continue
		}
		v, err := sysx.LGetxattr(path, n)
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
