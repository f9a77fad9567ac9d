package daemon

import (
	"fmt"

	bkexporter "github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/worker"

	"github.com/oci2/oci2/buildkit/basesource"
	"github.com/oci2/oci2/buildkit/exporter"
)

// Wrap returns w with the "oci2" exporter, and with the store's OCIv2
// images as build bases when Options.BaseImages is set. The wrapper holds
// the daemon open: the last wrapped worker's Close closes it.
func (d *Daemon) Wrap(w worker.Worker) (worker.Worker, error) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("oci2 daemon of store %s: wrapping worker %s after Close", d.Store(), w.ID())
	}
	fc, p := d.snapshotFileCache(w.ID())
	ow := &oci2Worker{Worker: w, d: d, cache: fc, cachePath: p, trees: exporter.NewTreeCache(0)}
	if d.opt.BaseImages {
		ow.bases = d.registerBases(w, exporter.Caches{Trees: ow.trees, Files: ow.cache})
	}
	d.acquire()
	return ow, nil
}

// oci2Worker is a worker whose Exporter also knows "oci2"; every other
// method, and every other exporter, is the wrapped worker's.
type oci2Worker struct {
	worker.Worker
	d         *Daemon
	cache     *exporter.SnapshotFileCache
	cachePath string
	trees     *exporter.TreeCache
	bases     *basesource.Source // OCIv2 bases from the store; nil when off
}

// Close (on buildkitd's graceful stop) releases the daemon (the last
// worker closes it, stopping its periodic jobs), saves the files cache,
// then closes the worker.
func (w *oci2Worker) Close() error {
	if err := w.d.release(); err != nil {
		bklog.L.Warnf("oci2 daemon: %v", err)
	}
	if w.cache.Dirty() {
		if err := w.cache.Save(w.cachePath); err != nil {
			bklog.L.Warnf("oci2 files cache: %v", err)
		}
	}
	return w.Worker.Close()
}

func (w *oci2Worker) Exporter(name string, sm *session.Manager) (bkexporter.Exporter, error) {
	if name != exporter.Type {
		return w.Worker.Exporter(name, sm)
	}
	return exporter.New(exporter.Opt{State: w.d.state, SessionManager: sm, Cache: w.cache, Trees: w.trees,
		RegistryHosts: w.d.opt.Hosts, Remotes: w.d.remotes})
}
