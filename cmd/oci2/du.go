package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/oci2/oci2/internal/refname"
	"github.com/oci2/oci2/store/admin"
)

func (a *app) duCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "du",
		Short: "Show the space used by each image and by the store",
		Long: `Show the space used by each image and by the store.

LOGICAL is what unpacking the image writes; STORED the frames and metadata it
needs; UNIQUE the part of STORED no other name reaches (what rm + gc would
free); SHARED the rest. The totals give the sum of the logical sizes and the
bytes of every blob in the store (UNREACHABLE is what gc would free).

` + brokenHelp,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.du(cmd.Context()) },
	}
	a.jsonFlag(cmd)
	return cmd
}

func (a *app) du(ctx context.Context) error {
	st, err := a.store()
	if err != nil {
		return err
	}
	u, err := admin.DU(ctx, st)
	if err != nil {
		return err
	}
	broken := 0
	for _, i := range u.Images {
		if i.Problem != "" {
			broken++
		}
	}
	if a.jsonOut {
		if err := printJSON(u); err != nil {
			return err
		}
		return brokenImages(broken)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "NAME\tLOGICAL\tSTORED\tUNIQUE\tSHARED\t")
	for _, i := range u.Images {
		logical := humanBytes(i.LogicalBytes)
		if i.Problem != "" {
			logical = "BROKEN"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", refname.Familiar(i.Name), logical,
			humanBytes(i.StoredBytes), humanBytes(i.UniqueBytes), humanBytes(i.SharedBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	ratio := ""
	if u.StoredBytes > 0 {
		ratio = fmt.Sprintf(" (%.2fx)", float64(u.LogicalBytes)/float64(u.StoredBytes))
	}
	fmt.Printf("total: %s logical, %s stored in %d blobs%s, %s unreachable\n",
		humanBytes(u.LogicalBytes), humanBytes(u.StoredBytes), u.Blobs, ratio, humanBytes(u.UnreachableBytes))
	for _, i := range u.Images {
		if i.Problem != "" {
			warnf(os.Stderr, "image %s is broken: %s", refname.Familiar(i.Name), i.Problem)
		}
	}
	return brokenImages(broken)
}
