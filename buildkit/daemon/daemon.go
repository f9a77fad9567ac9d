package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/moby/buildkit/util/bklog"

	"github.com/oci2/oci2/buildkit/exporter"
	"github.com/oci2/oci2/store/local"
	"github.com/oci2/oci2/transfer"
)

// Options configure a Daemon.
type Options struct {
	Config Config // the [oci2] table; Config.Store "" is <Root>/oci2
	Root   string // buildkitd's root: the files caches live under it
	// Hosts are buildkitd.toml's registries, for push=true and for pulling
	// OCIv2 bases.
	Hosts docker.RegistryHosts
	// BaseImages makes wrapped workers build on the store's OCIv2 images
	// (FROM, COPY --from, oci2://); false keeps the stock behaviour.
	BaseImages bool
}

// Daemon is the oci2 state shared by every worker of one buildkitd: one
// store, opened once, its periodic jobs, and each worker's files cache.
type Daemon struct {
	opt       Options
	state     *exporter.State
	remotes   *transfer.Remotes // pushes of the store (push=true), as `oci2 push` records them
	retention *retention

	mu      sync.Mutex
	caches  map[string]*exporter.SnapshotFileCache // by cache file path
	workers int                                    // wrapped workers not yet closed
	closed  bool

	// stop ends the periodic jobs (retention, saving files caches), which
	// jobs counts.
	stop context.CancelFunc
	jobs sync.WaitGroup
}

// Open opens the store of opt (creating its directory) and starts the
// periodic jobs: retention and saving the files caches. Close, or the
// Close of the last worker Wrap returned, stops them.
func Open(opt Options) (*Daemon, error) {
	d, err := newDaemon(opt)
	if err != nil {
		return nil, err
	}
	bklog.L.Infof("oci2 store %s (keep-bytes=%d, keep-duration=%s)",
		d.opt.Config.Store, d.retention.keepBytes, d.retention.keepDuration)
	var ctx context.Context
	ctx, d.stop = context.WithCancel(context.Background())
	d.every(ctx, retentionInterval, d.retention.tick)
	d.every(ctx, cacheSaveInterval, func(context.Context) {
		if err := d.saveCaches(); err != nil {
			bklog.L.Warnf("oci2 files cache: %v", err)
		}
	})
	return d, nil
}

// newDaemon opens the store; no job runs yet.
func newDaemon(opt Options) (*Daemon, error) {
	if opt.Config.Store == "" {
		opt.Config.Store = filepath.Join(opt.Root, "oci2")
	}
	var err error
	if opt.Config.Store, err = filepath.Abs(opt.Config.Store); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opt.Config.Store, 0o700); err != nil {
		return nil, err
	}
	st, err := local.Open(opt.Config.Store)
	if err != nil {
		return nil, fmt.Errorf("opening oci2 store %s: %w", opt.Config.Store, err)
	}
	d := &Daemon{
		opt: opt,
		// The store's index files (SPEC.md §8.2): a restarted daemon does
		// not scan the store.
		state:   exporter.NewState(st),
		remotes: transfer.LoadRemotes(transfer.RemotesFile(opt.Config.Store)),
		caches:  map[string]*exporter.SnapshotFileCache{},
		stop:    func() {},
	}
	if d.retention, err = newRetention(d.state, opt.Config); err != nil {
		return nil, err
	}
	return d, nil
}

// Store is the directory of the daemon's oci2 store.
func (d *Daemon) Store() string { return d.opt.Config.Store }

// Close stops the periodic jobs and waits for them, then saves the changed
// files caches; an error says which failed to save. It is called by the
// last wrapped worker's Close; calling it again does nothing.
func (d *Daemon) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.stop()
	d.jobs.Wait()
	return d.saveCaches()
}

// every runs fn each interval until ctx ends; a run in progress sees ctx
// end too. d.jobs counts it.
func (d *Daemon) every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	d.jobs.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn(ctx)
			}
		}
	})
}

// acquire counts a wrapped worker; release, from its Close, uncounts it,
// and the last one closes the daemon, so no job outlives buildkitd's
// graceful stop (with the store still open).
func (d *Daemon) acquire() {
	d.mu.Lock()
	d.workers++
	d.mu.Unlock()
}

func (d *Daemon) release() error {
	d.mu.Lock()
	d.workers--
	last := d.workers == 0
	d.mu.Unlock()
	if last {
		return d.Close()
	}
	return nil
}

// cacheSaveInterval is how often changed files caches are written out.
const cacheSaveInterval = time.Minute

// snapshotFileCache loads the files cache of worker id from the daemon's root.
func (d *Daemon) snapshotFileCache(id string) (*exporter.SnapshotFileCache, string) {
	p := filepath.Join(d.opt.Root, "oci2-filescache", id)
	c, err := exporter.LoadSnapshotFileCache(p, 0)
	if err != nil {
		bklog.L.Warnf("oci2 files cache of worker %s: %v (starting empty)", id, err)
	}
	d.mu.Lock()
	d.caches[p] = c
	d.mu.Unlock()
	return c, p
}

// saveCaches writes every changed files cache (every cacheSaveInterval). A
// cache lost with the process costs one slower export, never a wrong one.
func (d *Daemon) saveCaches() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for p, c := range d.caches {
		if c.Dirty() {
			errs = append(errs, c.Save(p))
		}
	}
	return errors.Join(errs...)
}
