// Not carried over from upstream: the hook that wires package
// buildkit/daemon into buildkitd. main.go's one marked hunk calls
// wrapWorker; UPSTREAM.md says how to re-carry upstream.

package main

import (
	"sync"

	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/worker"
	"github.com/urfave/cli/v3"

	"github.com/oci2/oci2/buildkit/daemon"
)

// Runs before main.go's init, which reads the version.
var _ = daemon.SetBuildKitVersion()

func init() { appFlags = append(appFlags, daemon.Flags()...) }

// workers opens the process's one daemon for the first worker; the last
// wrapped worker's Close closes it. newWorkerController keeps no state of
// ours, so this is where the daemon lives between its calls.
var workers struct {
	once sync.Once
	d    *daemon.Daemon
	err  error
}

// wrapWorker is called by newWorkerController for every worker.
func wrapWorker(c *cli.Command, cfg *config.Config, w worker.Worker) (worker.Worker, error) {
	workers.once.Do(func() { workers.d, workers.err = daemon.OpenCommand(c, cfg.Root, resolverFunc(cfg)) })
	if workers.err != nil {
		return nil, workers.err
	}
	return workers.d.Wrap(w)
}
