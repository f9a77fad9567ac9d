// Carried over from github.com/moby/buildkit v0.34.2, cmd/buildkitd/main_containerd_worker_unix.go.
// Local changes are marked "oci2:"; UPSTREAM.md says how to update.

//go:build !windows

package main

import (
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/plugins"
)

// getRuntimeOptionsType gets empty runtime options by the runtime type name.
func getRuntimeOptionsType(t string) any {
	if t == plugins.RuntimeRuncV2 {
		return &runcoptions.Options{}
	}
	return &runtimeoptions.Options{}
}
