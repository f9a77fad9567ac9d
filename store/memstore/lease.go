package memstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/oci2/oci2/store"
)

// gate is a reader/writer lock that honours ctx and can be tried: leases
// are readers, Exclusive is the writer. Like flock, it gives no preference
// to a waiting writer.
type gate struct {
	mu        sync.Mutex
	leases    int
	exclusive bool
	changed   chan struct{} // closed and replaced whenever the state changes
}

// acquire waits until ok() holds, then runs take, all under g.mu.
func (g *gate) acquire(ctx context.Context, wait bool, ok func() bool, take func()) error {
	for {
		g.mu.Lock()
		if ok() {
			take()
			g.mu.Unlock()
			return nil
		}
		if g.changed == nil {
			g.changed = make(chan struct{})
		}
		ch := g.changed
		g.mu.Unlock()
		if !wait {
			return fmt.Errorf("memstore: %w", store.ErrLocked)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("memstore: waiting for lock: %w", ctx.Err())
		}
	}
}

// update changes the state under g.mu and wakes every waiter.
func (g *gate) update(change func()) {
	g.mu.Lock()
	change()
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
	g.mu.Unlock()
}

// Lease implements store.Leaser: shared, waits while Exclusive is held.
func (s *Store) Lease(ctx context.Context) (func(), error) {
	g := &s.gate
	err := g.acquire(ctx, true, func() bool { return !g.exclusive }, func() { g.leases++ })
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { g.update(func() { g.leases-- }) }) }, nil
}

// Exclusive implements store.Leaser: granted when no lease and no other
// Exclusive is held.
func (s *Store) Exclusive(ctx context.Context, wait bool) (func(), error) {
	g := &s.gate
	err := g.acquire(ctx, wait, func() bool { return !g.exclusive && g.leases == 0 }, func() { g.exclusive = true })
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { g.update(func() { g.exclusive = false }) }) }, nil
}
