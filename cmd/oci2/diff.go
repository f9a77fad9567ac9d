package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/oci2/oci2/store/admin"
)

func (a *app) diffCmd() *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:   "diff [--platform os/arch] A B",
		Short: "List paths added (A), deleted (D) or changed (C) from image A to image B",
		Long: `List paths added (A), deleted (D) or changed (C) from image A to image B,
like docker diff. Unchanged directories are skipped by tree digest, so the
work is proportional to what changed. An added or deleted directory is listed
once, without its contents. A changed path is marked [content] and/or
[metadata].`,
		Args: exactArgs(2, "images A and B"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.diff(cmd.Context(), args[0], args[1], platform)
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "platform os/arch[/variant] of multi-platform images")
	a.jsonFlag(cmd)
	return cmd
}

func (a *app) diff(ctx context.Context, argA, argB, platform string) error {
	plat, err := parsePlatform(platform)
	if err != nil {
		return err
	}
	st, err := a.store()
	if err != nil {
		return err
	}
	var sides [2]admin.Side
	for i, arg := range []string{argA, argB} {
		md, err := resolveManifest(ctx, st, arg, plat)
		if err != nil {
			return err
		}
		if sides[i], err = admin.OpenSide(ctx, st, md); err != nil {
			return fmt.Errorf("opening %s: %w", arg, err)
		}
	}
	changes, err := admin.Diff(ctx, sides[0], sides[1])
	if err != nil {
		return err
	}
	if a.jsonOut {
		return printJSON(changes)
	}
	for _, c := range changes {
		var what []string
		if c.Content {
			what = append(what, "content")
		}
		if c.Metadata {
			what = append(what, "metadata")
		}
		letter := map[admin.ChangeKind]string{admin.Added: "A", admin.Removed: "D", admin.Modified: "C"}[c.Kind]
		if len(what) > 0 {
			fmt.Printf("%s %s [%s]\n", letter, c.Path, strings.Join(what, ","))
		} else {
			fmt.Printf("%s %s\n", letter, c.Path)
		}
	}
	return nil
}
