package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/store"
)

// Durability is batched: writes record what they changed, and Sync (called
// before any ref changes) makes it durable at once. Few files are fsynced
// one by one, in parallel, with their directories; many are flushed with
// one syncfs(2) of the store's filesystem. syncfs also flushes whatever
// else is dirty on that filesystem: in buildkitd that is the snapshot the
// export just read (a COPY of hundreds of megabytes), which an incremental
// export that wrote two frames must not wait for.
//
// syncFilesMax is where syncfs takes over: fsync costs a journal commit
// per call (parallel calls share commits), syncfs one flush of everything.
// A cold create of debian-build (about 1,600 frames) costs the same either
// way, while its export in buildkitd right after a COPY of the tree is
// slower with syncfs, which also flushes what the COPY left dirty: so
// fsyncs up to thousands of files (bench/results/*store-timing* measures
// creates).
const syncFilesMax = 4096

// pending is what was written (or kept) since the last Sync.
type pending struct {
	mu       sync.Mutex
	files    []string
	kept     map[string]struct{} // files found stored, fsynced one by one
	dirs     map[string]struct{}
	overflow bool // more than syncFilesMax files: syncfs
}

// keep records a file found stored (written, perhaps, by a process that
// died before syncing it). fsync of a file with nothing dirty is nearly
// free, so kept files never make Sync fall back to syncfs.
func (p *pending) keep(path, dir string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dirs == nil {
		p.dirs = map[string]struct{}{}
	}
	if p.kept == nil {
		p.kept = map[string]struct{}{}
	}
	p.dirs[dir] = struct{}{}
	p.kept[path] = struct{}{}
}

// wrote records a new file (path "" for a removal) in dir.
func (p *pending) wrote(path, dir string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dirs == nil {
		p.dirs = map[string]struct{}{}
	}
	p.dirs[dir] = struct{}{}
	if p.overflow || path == "" {
		return
	}
	if len(p.files) >= syncFilesMax {
		p.overflow, p.files = true, nil
		return
	}
	p.files = append(p.files, path)
}

// take returns and clears what is pending.
func (p *pending) take() (files []string, dirs []string, overflow, any bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for d := range p.dirs {
		dirs = append(dirs, d)
	}
	files, overflow, any = p.files, p.overflow, len(p.dirs) > 0
	if overflow {
		files = nil // syncfs flushes the kept files too
	}
	for f := range p.kept {
		if !overflow {
			files = append(files, f)
		}
	}
	p.files, p.kept, p.dirs, p.overflow = nil, nil, nil, false
	return files, dirs, overflow, any
}

// restore puts back what a failed Sync took.
func (p *pending) restore(files, dirs []string, overflow bool) {
	for _, d := range dirs {
		p.wrote("", d)
	}
	p.mu.Lock()
	p.overflow = p.overflow || overflow || len(files) > 0
	p.mu.Unlock()
}

// markWritten records blob or unit file path as written.
func (s *Store) markWritten(path string) { s.pend.wrote(path, filepath.Dir(path)) }

// markKept records blob or unit file path, found stored, for the next Sync.
func (s *Store) markKept(path string) { s.pend.keep(path, filepath.Dir(path)) }

// markRemoved records a removal from dir.
func (s *Store) markRemoved(path string) { s.pend.wrote("", filepath.Dir(path)) }

// Sync implements store.Syncer: it makes every blob written or kept
// so far durable. SetRef calls it; callers that hand blobs to another
// process without a ref may call it too.
func (s *Store) Sync(ctx context.Context) error {
	files, dirs, overflow, any := s.pend.take()
	if !any {
		return nil
	}
	var err error
	if overflow {
		err = syncfs(s.dir)
	} else {
		err = fsyncAll(ctx, files, dirs)
	}
	if err != nil {
		s.pend.restore(files, dirs, overflow)
		return fmt.Errorf("sync store: %w", err)
	}
	return nil
}

func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// fsyncAll fsyncs files, then their directories.
func fsyncAll(ctx context.Context, files, dirs []string) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, p := range files {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fsyncPath(p)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, d := range dirs {
		if err := fsyncPath(d); err != nil {
			return err
		}
	}
	return nil
}

// onFsync observes fsyncPath (tests count what a Sync makes durable).
var onFsync = func(string) {}

// fsyncPath fsyncs a file or directory by path. A file removed since (gc)
// needs nothing.
func fsyncPath(p string) error {
	onFsync(p)
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return &os.PathError{Op: "fsync", Path: p, Err: err}
	}
	return nil
}

// Keep implements store.Syncer: blob d, and its unit descriptor if it
// has one, are made durable by the next Sync. A store's blobs and
// descriptors may have been written by a process killed before its Sync:
// a writer that relies on one keeps it, so that the ref it then sets names
// nothing a power loss could take away.
func (s *Store) Keep(ctx context.Context, d digest.Digest) error {
	if err := store.CheckDigest(d); err != nil {
		return err
	}
	p := s.blobPath(d)
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keep blob %s: %w", d, store.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("keep blob %s: %w", d, err)
	}
	s.markKept(p)
	if up := s.unitPath(d); fileExists(up) {
		s.markKept(up)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
