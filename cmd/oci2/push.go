package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/oci2/oci2/transfer"
)

type pushFlags struct {
	remote    remoteFlags
	mountFrom []string
	byDigest  bool
}

func (a *app) pushCmd() *cobra.Command {
	var f pushFlags
	cmd := &cobra.Command{
		Use:   "push NAME|DIGEST REF",
		Short: "Send an image to a registry (only what the repository lacks)",
		Long: `Send the image NAME (or DIGEST) to the registry repository REF
(host/repo[:tag], the tag defaulting to latest).

Blobs the repository already has are not sent. A pack it lacks is mounted from
another repository of the same registry this store pushed it to or pulled it
from (or one named with --mount-from), else rebuilt from the store's frames
and uploaded. Credentials come from the docker config (~/.docker/config.json,
$DOCKER_CONFIG) and its credential helpers.`,
		Args: exactArgs(2, "NAME|DIGEST and REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.push(cmd.Context(), f, args[0], args[1])
		},
	}
	f.remote.add(cmd, true)
	cmd.Flags().StringArrayVar(&f.mountFrom, "mount-from", nil, "another repository of the registry to mount blobs from (repeatable)")
	cmd.Flags().BoolVar(&f.byDigest, "by-digest", false, "store the image without tagging it")
	a.jsonFlag(cmd)
	return cmd
}

func (a *app) push(ctx context.Context, f pushFlags, name, ref string) error {
	warn := warner()
	ro, err := f.remote.options(warn)
	if err != nil {
		return err
	}
	st, release, err := a.leasedStore(ctx)
	if err != nil {
		return err
	}
	defer release()
	tgt, err := resolveTarget(ctx, st, name)
	if err != nil {
		return err
	}
	rec := transfer.LoadRemotes(transfer.RemotesFile(st.Dir()))
	b := newBar()
	res, err := transfer.Push(ctx, st, tgt.Descriptor, ref, transfer.PushOptions{
		Options:   transfer.Options{Registry: ro, Progress: transferProgress(b), Warn: warn},
		Remotes:   rec,
		MountFrom: f.mountFrom,
		ByDigest:  f.byDigest,
	})
	b.done()
	if err != nil {
		return err
	}
	if err := rec.Save(); err != nil {
		warnf(os.Stderr, "%v", err)
	}
	return a.reportTransfer("pushed", res)
}
