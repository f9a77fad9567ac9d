package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/moby/buildkit/cmd/buildkitd/config"
	bkexporter "github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/version"
	"github.com/moby/buildkit/worker"
	"github.com/urfave/cli/v3"

	"github.com/oci2/oci2/buildkit/basesource"
	"github.com/oci2/oci2/buildkit/exporter"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/local"
	"github.com/oci2/oci2/transfer"
)

// Builds without -ldflags report BuildKit's version as "0.0.0+unknown",
// and clients (buildx) gate features on it: report the buildkit module's
// version, which this daemon is. A package-level initializer runs before
// every init, so main.go's init sees it.
var _ = setVersion()

func setVersion() bool {
	if version.Version != "v0.0.0+unknown" {
		return false
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/moby/buildkit" {
				version.Version = m.Version
				return true
			}
		}
	}
	return false
}

// Our own flags; upstream's are untouched.
const (
	flagStore      = "oci2-store"
	flagBaseImages = "oci2-base-images"
)

func init() {
	appFlags = append(appFlags, &cli.StringFlag{
		Name:  flagStore,
		Usage: `oci2 store written by "--output type=oci2" (default: <root>/oci2; config: [oci2] store)`,
	}, &cli.StringFlag{
		Name:  flagBaseImages,
		Value: "auto",
		Usage: `OCIv2 images of the oci2 store as build bases: "auto" (FROM, COPY --from, oci2://), "off" (stock behaviour)`,
	})
}

// daemon is the oci2 state shared by every worker: one store, opened once,
// and each worker's files cache.
type daemon struct {
	once  sync.Once
	err   error
	cfg   oci2Config
	root  string
	state *exporter.State
	// remotes records pushes of the store (push=true), as `oci2 push` does.
	remotes *transfer.Remotes

	mu      sync.Mutex
	caches  map[string]*exporter.SnapshotFileCache // by cache file path
	workers int                                    // wrapped workers not yet closed

	// stop ends the periodic jobs (retention, saving files caches), which
	// jobs counts; the last worker's Close calls it.
	stop context.CancelFunc
	jobs sync.WaitGroup
}

var oci2d daemon

// open loads the [oci2] table, opens the store and starts its periodic
// jobs: retention and saving the files caches.
func (d *daemon) open(c *cli.Command, cfg *config.Config) error {
	d.once.Do(func() {
		d.cfg, d.err = loadOCI2Config(c.String("config"))
		if d.err != nil {
			return
		}
		if c.IsSet(flagStore) {
			d.cfg.Store = c.String(flagStore)
		}
		if d.cfg.Store == "" {
			d.cfg.Store = filepath.Join(cfg.Root, "oci2")
		}
		if d.cfg.Store, d.err = filepath.Abs(d.cfg.Store); d.err != nil {
			return
		}
		if d.err = os.MkdirAll(d.cfg.Store, 0o700); d.err != nil {
			return
		}
		var st *local.Store
		if st, d.err = local.Open(d.cfg.Store); d.err != nil {
			d.err = fmt.Errorf("opening oci2 store %s: %w", d.cfg.Store, d.err)
			return
		}
		d.state = exporter.NewState(st, index.WithDir(st.IndexDir()))
		d.remotes = transfer.LoadRemotes(transfer.RemotesFile(d.cfg.Store))
		d.root = cfg.Root
		d.caches = map[string]*exporter.SnapshotFileCache{}
		var r *retention
		if r, d.err = newRetention(d.state, d.cfg); d.err != nil {
			return
		}
		r.indexDir = st.IndexDir()
		bklog.L.Infof("oci2 store %s (keep-bytes=%d, keep-duration=%s)",
			d.cfg.Store, r.keepBytes, r.keepDuration)
		var ctx context.Context
		ctx, d.stop = context.WithCancel(context.Background())
		d.every(ctx, retentionInterval, r.tick)
		d.every(ctx, cacheSaveInterval, d.saveCaches)
	})
	return d.err
}

// every runs fn each interval until ctx ends; a run in progress sees ctx
// end too. d.jobs counts it.
func (d *daemon) every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
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
// and the last one stops the periodic jobs and waits for them, so none
// outlives the daemon's graceful stop (with the store still open).
func (d *daemon) acquire() {
	d.mu.Lock()
	d.workers++
	d.mu.Unlock()
}

func (d *daemon) release() {
	d.mu.Lock()
	d.workers--
	last := d.workers == 0
	d.mu.Unlock()
	if last && d.stop != nil {
		d.stop()
		d.jobs.Wait()
	}
}

// cacheSaveInterval is how often changed files caches are written out.
const cacheSaveInterval = time.Minute

// fileCache loads the files cache of worker id from the daemon's root.
func (d *daemon) fileCache(id string) (*exporter.SnapshotFileCache, string) {
	p := filepath.Join(d.root, "oci2-filescache", id)
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
func (d *daemon) saveCaches(context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p, c := range d.caches {
		if c.Dirty() {
			if err := c.Save(p); err != nil {
				bklog.L.Warnf("oci2: %v", err)
			}
		}
	}
}

// oci2Worker is a worker whose Exporter also knows "oci2"; every other
// method, and every other exporter, is the wrapped worker's.
type oci2Worker struct {
	worker.Worker
	d         *daemon
	cache     *exporter.SnapshotFileCache
	cachePath string
	trees     *exporter.TreeCache
	hosts     docker.RegistryHosts // buildkitd.toml's registries, for push=true
	bases     *basesource.Source   // OCIv2 bases from the store; nil when off
}

// Close saves the files cache (on the daemon's graceful stop), releases
// the daemon (the last worker stops its periodic jobs), then closes the
// worker.
func (w *oci2Worker) Close() error {
	w.d.release()
	if w.cache.Dirty() {
		if err := w.cache.Save(w.cachePath); err != nil {
			bklog.L.Warnf("oci2: %v", err)
		}
	}
	return w.Worker.Close()
}

// wrapWorker is called by newWorkerController for every worker.
func wrapWorker(c *cli.Command, cfg *config.Config, w worker.Worker) (worker.Worker, error) {
	if err := oci2d.open(c, cfg); err != nil {
		return nil, err
	}
	fc, p := oci2d.fileCache(w.ID())
	ow := &oci2Worker{Worker: w, d: &oci2d, cache: fc, cachePath: p, trees: exporter.NewTreeCache(0), hosts: resolverFunc(cfg)}
	switch mode := c.String(flagBaseImages); mode {
	case "auto":
		ow.bases = registerBases(w, ow.hosts, exporter.Caches{Trees: ow.trees, Files: ow.cache})
	case "off":
	default:
		return nil, fmt.Errorf("--%s=%q: want auto or off", flagBaseImages, mode)
	}
	oci2d.acquire()
	return ow, nil
}

func (w *oci2Worker) Exporter(name string, sm *session.Manager) (bkexporter.Exporter, error) {
	if name != exporter.Type {
		return w.Worker.Exporter(name, sm)
	}
	return exporter.New(exporter.Opt{State: oci2d.state, SessionManager: sm, Cache: w.cache, Trees: w.trees,
		RegistryHosts: w.hosts, Remotes: oci2d.remotes})
}
