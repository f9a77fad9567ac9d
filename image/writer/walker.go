package writer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
)

// Walker reads entries of one directory tree on demand, with the rules of
// FromDir, for callers that need parts of a tree: the exporter applies a
// layer's changes to the tree of its parent. Nodes from walks of one
// filesystem share hardlink groups (Node.Inode is the inode number).
type Walker struct {
	w *walker
}

// NewWalker returns a Walker over dir, which must be a directory.
func NewWalker(dir string, opts DirOptions) (*Walker, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("walking %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		return nil, fmt.Errorf("walking %s: %w", dir, &os.PathError{Op: "lstat", Path: abs, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("walking %s: not a directory", dir)
	}
	w := &walker{root: abs, dev: st.Dev, warn: func(string, error) {}}
	if opts.Warn != nil {
		var mu sync.Mutex
		w.warn = func(p string, err error) {
			mu.Lock()
			defer mu.Unlock()
			opts.Warn(p, err)
		}
	}
	return &Walker{w: w}, nil
}

// Entry returns the entry at rel (a slash path below Dir, "" for Dir
// itself) without its children. It returns nil and no error when the entry
// does not exist or is not represented (a socket, a mount point).
func (w *Walker) Entry(rel string) (*Node, error) {
	path := w.w.root
	if rel != "" {
		path = joinPath(w.w.root, rel)
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil, nil
		}
		return nil, fmt.Errorf("walking: %w", &os.PathError{Op: "lstat", Path: path, Err: err})
	}
	return w.w.entry(rel[strings.LastIndexByte(rel, '/')+1:], path, rel, &st, time.Now().UnixNano(), unix.AT_FDCWD, path)
}

// walkers is how many directories are read at once: the walk waits on
// system calls (stat, listxattr) more than it computes.
func walkers() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// Tree returns the entry at rel with its whole subtree (nil when it does
// not exist), as FromDir would give it.
func (w *Walker) Tree(ctx context.Context, rel string) (*Node, error) {
	n, err := w.Entry(rel)
	if err != nil || n == nil || n.Type != format.TypeDir {
		return n, err
	}
	path := w.w.root
	if rel != "" {
		path = joinPath(w.w.root, rel)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(walkers())
	err = w.w.walkDir(gctx, g, n, path, rel)
	if err != nil {
		cancel()
	}
	if werr := g.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}
