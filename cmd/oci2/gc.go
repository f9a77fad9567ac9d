package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/oci2/oci2/store/admin"
)

func (a *app) gcCmd() *cobra.Command {
	var dryRun, noWait, noCompact bool
	cmd := &cobra.Command{
		Use:   "gc [--dry-run] [--no-wait] [--no-compact]",
		Short: "Delete every blob no image name reaches",
		Long: `Delete every blob no image name reaches, and the temporary files of
interrupted writes. gc needs the store to itself: it waits until other oci2
processes writing to the store are done (new writers wait for gc), or with
--no-wait fails at once (exit code 1, "store is in use").

Units (blobs holding the chunks of virtual frames) that images still use
only in small part are compacted: the chunks in use are copied into new
units and the old ones deleted (--no-compact keeps them).`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.gc(cmd.Context(), dryRun, !noWait, noCompact) },
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be deleted, delete nothing")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "fail instead of waiting while another process writes")
	cmd.Flags().BoolVar(&noCompact, "no-compact", false, "keep units used only in small part instead of rewriting them")
	a.jsonFlag(cmd)
	return cmd
}

func (a *app) gc(ctx context.Context, dryRun, wait, noCompact bool) error {
	st, err := a.store()
	if err != nil {
		return err
	}
	b := newBar()
	rep, err := admin.GC(ctx, st, admin.GCOptions{
		DryRun: dryRun, Wait: wait, NoCompact: noCompact,
		Progress: func(p admin.GCProgress) { b.update(p.Phase, p.Done, p.Total, false) },
	})
	b.done()
	if err != nil {
		return err
	}
	if a.jsonOut {
		return printJSON(rep)
	}
	verb := "deleted"
	if dryRun {
		verb = "would delete"
	}
	fmt.Printf("%s %d blobs (%s)", verb, rep.Deleted, humanBytes(rep.DeletedBytes))
	if rep.IngestFiles > 0 {
		fmt.Printf(" and %d temp files of interrupted writes", rep.IngestFiles)
	}
	if rep.Compacted > 0 {
		fmt.Printf(", compacting %d units into %d (%s)", rep.Compacted, rep.CompactedNew, humanBytes(rep.CompactedNewBytes))
	}
	fmt.Printf("; kept %d blobs (%s) of %d images\n", rep.LiveBlobs, humanBytes(rep.LiveBytes), rep.Refs)
	return nil
}
