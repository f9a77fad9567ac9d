package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// errNotImplemented is returned by commands whose library has not landed.
var errNotImplemented = errors.New("not implemented yet")

func (a *app) importCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import SRC NAME",
		Short: "Convert an ordinary OCI image to an oci2 image (not implemented yet)",
		Args:  exactArgs(2, "SRC and NAME"),
		RunE:  func(cmd *cobra.Command, args []string) error { return errNotImplemented },
	}
}

func (a *app) exportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export NAME DST",
		Short: "Convert an oci2 image to an ordinary OCI image (not implemented yet)",
		Args:  exactArgs(2, "NAME and DST"),
		RunE:  func(cmd *cobra.Command, args []string) error { return errNotImplemented },
	}
}
