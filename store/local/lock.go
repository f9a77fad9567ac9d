package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/store"
)

// Locks are flock(2) locks. They belong to an open file description, not to
// a process: every acquisition opens the lock file anew, so two leases (or a
// lease and Exclusive) in one process conflict exactly as they would in two
// processes, and closing the file releases only that lock. (fcntl locks would
// be per process and dropped by any close.) The kernel releases them when the
// process dies. Go opens files with O_CLOEXEC, so children do not inherit
// them.

// lockFile opens path and takes a flock of kind how (LOCK_SH or LOCK_EX).
// When wait is set it polls until granted or ctx ends (a blocking flock
// could not be cancelled); otherwise it fails with store.ErrLocked.
// Closing the returned file releases the lock.
func lockFile(ctx context.Context, path string, how int, wait bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", filepath.Base(path), err)
	}
	delay := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return f, nil
		case errors.Is(err, unix.EINTR):
			continue
		case !errors.Is(err, unix.EWOULDBLOCK):
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", filepath.Base(path), err)
		case !wait:
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", filepath.Base(path), store.ErrLocked)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", filepath.Base(path), ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Millisecond)
	}
}

// hold keeps f referenced by the store until the returned idempotent func
// closes it: an *os.File that becomes garbage is closed by its finalizer,
// which would silently drop a lease whose release func the caller dropped.
func (s *Store) hold(f *os.File) func() {
	s.heldMu.Lock()
	if s.held == nil {
		s.held = map[*os.File]struct{}{}
	}
	s.held[f] = struct{}{}
	s.heldMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.heldMu.Lock()
			delete(s.held, f)
			s.heldMu.Unlock()
			f.Close()
		})
	}
}

// Lease implements store.Leaser: a shared flock on oci2/gc.lock, held
// until release or process exit. It waits while Exclusive is held.
func (s *Store) Lease(ctx context.Context) (func(), error) {
	f, err := lockFile(ctx, s.path(gcLock), unix.LOCK_SH, true)
	if err != nil {
		return nil, err
	}
	return s.hold(f), nil
}

// Exclusive implements store.Leaser: an exclusive flock on
// oci2/gc.lock, granted when no process holds a lease.
func (s *Store) Exclusive(ctx context.Context, wait bool) (func(), error) {
	f, err := lockFile(ctx, s.path(gcLock), unix.LOCK_EX, wait)
	if err != nil {
		return nil, err
	}
	return s.hold(f), nil
}
