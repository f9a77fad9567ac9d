package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/util/disk"
	"github.com/moby/buildkit/worker"
)

// closer is a worker whose only used methods are ID and Close.
type closer struct {
	worker.Worker
	id string
}

func (c closer) ID() string { return c.id }
func (closer) Close() error { return nil }

// TestJobsStopWithLastWorker: the periodic jobs keep running while a
// wrapped worker is open and have ended when the last one's Close returns.
func TestJobsStopWithLastWorker(t *testing.T) {
	d, err := newDaemon(Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	d.stop = stop
	ticks := make(chan struct{}, 1)
	var closed atomic.Bool
	d.every(ctx, time.Millisecond, func(context.Context) {
		if closed.Load() {
			t.Error("a job ran after the last worker closed")
		}
		select {
		case ticks <- struct{}{}:
		default:
		}
	})
	workers := make([]worker.Worker, 2)
	for i := range workers {
		if workers[i], err = d.Wrap(closer{id: fmt.Sprint("w", i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitTick := func() {
		t.Helper()
		select {
		case <-ticks:
		case <-time.After(30 * time.Second):
			t.Fatal("no job ran within 30s")
		}
	}
	waitTick()
	if err := workers[0].Close(); err != nil {
		t.Fatal(err)
	}
	waitTick() // perhaps one sent before the Close
	waitTick() // sent after it
	if ctx.Err() != nil {
		t.Fatal("the first of two workers to close stopped the jobs")
	}

	done := make(chan error, 1)
	go func() { done <- workers[1].Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the last worker's Close did not return within 30s: jobs still running")
	}
	closed.Store(true)
	if ctx.Err() == nil {
		t.Fatal("the last worker closed and the jobs' context is still live")
	}
	d.jobs.Wait() // returns at once: Close waited for the jobs
	if _, err := d.Wrap(closer{id: "late"}); err == nil {
		t.Fatal("a closed daemon wrapped a worker")
	}
}

// TestKeepBytes: a percentage keep-bytes is a share of the store's
// filesystem, and one that cannot be measured is an error naming the
// setting and the path, never "no limit".
func TestKeepBytes(t *testing.T) {
	dir := t.TempDir()
	dstat, err := disk.GetDiskStat(dir)
	if err != nil {
		t.Fatal(err)
	}
	pct := config.DiskSpace{Percentage: 10}
	if got, err := keepBytes(pct, dir); err != nil || got != pct.AsBytes(dstat) || got <= 0 {
		t.Errorf("keep-bytes 10%% of %s: %d, %v; want %d", dir, got, err, pct.AsBytes(dstat))
	}
	missing := filepath.Join(dir, "no", "store")
	got, err := keepBytes(pct, missing)
	if err == nil || !errors.Is(err, syscall.ENOENT) || !strings.Contains(err.Error(), "keep-bytes = 10%") ||
		!strings.Contains(err.Error(), missing) {
		t.Errorf("keep-bytes 10%% of a missing path: %d, %v; want an ENOENT error naming the setting and path", got, err)
	}
	for _, ks := range []config.DiskSpace{{}, {Bytes: 5 << 30}} {
		if got, err := keepBytes(ks, missing); err != nil || got != ks.Bytes {
			t.Errorf("keep-bytes %+v: %d, %v; want %d without measuring", ks, got, err, ks.Bytes)
		}
	}
}
