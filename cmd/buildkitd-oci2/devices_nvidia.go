// Carried over from github.com/moby/buildkit v0.34.2, cmd/buildkitd/devices_nvidia.go.
// Local changes are marked "oci2:"; UPSTREAM.md says how to update.

//go:build nvidia

package main

import (
	_ "github.com/moby/buildkit/contrib/cdisetup/nvidia"
)
