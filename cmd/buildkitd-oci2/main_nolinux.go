// Carried over from github.com/moby/buildkit v0.34.2, cmd/buildkitd/main_nolinux.go.
// Local changes are marked "oci2:"; UPSTREAM.md says how to update.

//go:build !linux

package main

import (
	"os"

	"github.com/moby/sys/reexec"
)

func init() {
	if reexec.Init() {
		os.Exit(0)
	}
}
