package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/oci2/oci2/store/admin"
	"github.com/oci2/oci2/store/index"
)

func (a *app) checkCmd() *cobra.Command {
	var readData, repair bool
	cmd := &cobra.Command{
		Use:   "check [--read-data] [--repair]",
		Short: "Verify every named image (exit code 3 when problems are found)",
		Long: `Verify every named image: indexes, manifests, configs and pack indexes
parse and validate, every frame is stored with its size, and every tree is
walked and validated (SPEC.md §4.2, §4.3 and the §7 limits; tree frames only).
With --read-data every frame is also read, decompressed and its chunks
verified, and every pack digest is checked against its frames.
With --repair the descriptors of units (SPEC.md §8) that lost theirs are
first rebuilt from the unit blobs, which describe themselves.

Exit code 0: no problem; 3: problems found (listed); 1: check could not run.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.check(cmd.Context(), readData, repair) },
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "also read and verify every data frame and pack digest")
	cmd.Flags().BoolVar(&repair, "repair", false, "first rebuild lost unit descriptors from the unit blobs")
	a.jsonFlag(cmd)
	return cmd
}

func (a *app) check(ctx context.Context, readData, repair bool) error {
	st, release, err := a.leasedStore(ctx)
	if err != nil {
		return err
	}
	defer release()
	if repair {
		n, err := index.RepairUnits(ctx, st)
		if err != nil {
			return err
		}
		if err := st.Sync(ctx); err != nil {
			return err
		}
		// The index files may say what the lost descriptors said (a
		// pinned frame is a unit): the next command rebuilds them.
		if err := index.RemoveFiles(st.IndexDir()); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "rebuilt %d unit descriptors\n", n)
	}
	b := newBar()
	rep, err := admin.Check(ctx, st, admin.CheckOptions{
		ReadData: readData,
		Progress: func(p admin.CheckProgress) {
			if p.Phase == "data" {
				b.update("reading data", p.Bytes, p.BytesTotal, true)
				return
			}
			b.update("checking "+p.Phase, p.Done, p.Total, false)
		},
	})
	b.done()
	if err != nil {
		return err
	}
	if a.jsonOut {
		if err := printJSON(rep); err != nil {
			return err
		}
	} else {
		for _, p := range rep.Problems {
			fmt.Println(p.String())
		}
		fmt.Fprintf(os.Stderr, "checked %d images, %d manifests, %d packs, %d frames (%d virtual)",
			rep.Refs, rep.Manifests, rep.Packs, rep.Frames, rep.VirtualFrames)
		if readData {
			fmt.Fprintf(os.Stderr, ", read %s", humanBytes(rep.DataBytes))
		}
		fmt.Fprintf(os.Stderr, ": %d problems\n", len(rep.Problems))
	}
	if !rep.OK() {
		return errProblems
	}
	return nil
}
