package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) unpackCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "unpack [--bundle] [--force] [--platform os/arch] NAME|DIGEST DEST",
		Short: "Write an image's root filesystem (or an OCI runtime bundle) to DEST",
		Args:  exactArgs(2, "NAME|DIGEST and DEST"),
		RunE:  func(cmd *cobra.Command, args []string) error { return errNotImplemented },
	}
}

// errNotImplemented is returned by commands whose library has not landed.
var errNotImplemented = errors.New("not implemented yet")
