package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/oci2/oci2/internal/refname"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/transfer"
)

type pullFlags struct {
	remote remoteFlags
	tag    string
}

func (a *app) pullCmd() *cobra.Command {
	var f pullFlags
	cmd := &cobra.Command{
		Use:   "pull REF [--tag NAME]",
		Short: "Fetch an image from a registry (only what the store lacks)",
		Long: `Fetch the image REF (host/repo[:tag][@digest]) into the store and name
it REF (normalized), or NAME with --tag.

Frames the store holds are kept, frames it can rebuild from chunks it holds
are rebuilt, and only the rest is fetched, with range requests on the packs
(nearby ranges merged, a few per pack at most, whole packs when most of one is
needed). Every frame is verified before it is stored and the name is set last:
an interrupted pull leaves no name, and running it again fetches only what is
still missing.`,
		Args: exactArgs(1, "REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.pull(cmd.Context(), f, args[0])
		},
	}
	f.remote.add(cmd, false)
	cmd.Flags().StringVarP(&f.tag, "tag", "t", "", "name the image NAME in the store (default: REF)")
	a.jsonFlag(cmd)
	return cmd
}

func (a *app) pull(ctx context.Context, f pullFlags, ref string) error {
	warn := warner()
	ro, err := f.remote.options(warn)
	if err != nil {
		return err
	}
	var name string
	if f.tag != "" {
		if name, err = refname.NormalizeTag(f.tag); err != nil {
			return usageError{err}
		}
	} else if name, err = refname.Normalize(ref); err != nil {
		return usageError{err}
	}
	st, release, err := a.leasedStore(ctx)
	if err != nil {
		return err
	}
	defer release()
	idx, err := index.New(ctx, st)
	if err != nil {
		return fmt.Errorf("indexing store: %w", err)
	}
	rec := transfer.LoadRemotes(transfer.RemotesFile(st.Dir()))
	b := newBar()
	res, err := transfer.Pull(ctx, st, ref, transfer.PullOptions{
		Options: transfer.Options{Registry: ro, Progress: transferProgress(b), Warn: warn},
		Name:    name,
		Index:   idx,
		Remotes: rec,
	})
	b.done()
	if err != nil {
		return err
	}
	if err := rec.Save(); err != nil {
		warnf(os.Stderr, "%v", err)
	}
	return a.reportTransfer("pulled", res)
}
