package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/oci2/oci2/transfer"
)

type copyFlags struct {
	remote   remoteFlags
	byDigest bool
}

func (a *app) copyCmd() *cobra.Command {
	var f copyFlags
	cmd := &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy an image between registries, digests kept",
		Long: `Copy the image SRC (host/repo[:tag][@digest]) to DST (host/repo[:tag];
without a tag, SRC's). Blobs DST has are skipped; within one registry the
others are mounted from SRC's repository, else streamed through (verified).
No local store is used.`,
		Args: exactArgs(2, "SRC and DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.copyImage(cmd.Context(), f, args[0], args[1])
		},
	}
	f.remote.add(cmd, true)
	cmd.Flags().BoolVar(&f.byDigest, "by-digest", false, "store the image without tagging it")
	a.jsonFlag(cmd)
	return cmd
}

func (a *app) copyImage(ctx context.Context, f copyFlags, src, dst string) error {
	warn := warner()
	ro, err := f.remote.options(warn)
	if err != nil {
		return err
	}
	b := newBar()
	res, err := transfer.Copy(ctx, src, dst, transfer.CopyOptions{
		Options:  transfer.Options{Registry: ro, Progress: transferProgress(b), Warn: warn},
		ByDigest: f.byDigest,
	})
	b.done()
	if err != nil {
		return err
	}
	return a.reportTransfer("copied", res)
}
