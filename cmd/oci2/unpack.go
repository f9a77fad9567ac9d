package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/unpack"
)

type unpackFlags struct {
	bundle   bool
	force    bool
	platform string
}

func (a *app) unpackCmd() *cobra.Command {
	var f unpackFlags
	cmd := &cobra.Command{
		Use:   "unpack [--bundle] [--force] [--platform os/arch] NAME|DIGEST DEST",
		Short: "Write an image's root filesystem (or an OCI runtime bundle) to DEST",
		Long: `Write an image's root filesystem to DEST, created when missing and
otherwise required to be empty (unless --force: the image's entries then
replace what is there). Every chunk is verified; nothing is written outside
DEST and no symlink is followed inside it.

As root, everything is written as the image declares it, which a hostile
image can use: device nodes (character and block, any major:minor: a node
gives whoever can open it access to that host device), owners, setuid and
setgid bits, file capabilities and the other security.* and trusted.*
xattrs, and the mode, owner and times of the image's root on DEST itself
(DEST may become world-writable or owned by another user). Unpack images
you do not trust as non-root, or into a DEST on a nodev mount.
As non-root, device nodes, security.* and trusted.* xattrs and foreign
owners are skipped with a warning. Either way an xattr the filesystem
cannot hold (ext4 keeps one block of xattrs per file; user.* xattrs exist
on regular files and directories only) is skipped with a warning.

With --bundle, DEST becomes an OCI runtime bundle for runc: DEST/rootfs and
DEST/config.json running the image config's process. The image's
/etc/passwd and /etc/group resolve its user; they are read only when they
are regular files inside the rootfs.`,
		Args: exactArgs(2, "NAME|DIGEST and DEST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.unpack(cmd.Context(), f, args[0], args[1])
		},
	}
	cmd.Flags().BoolVar(&f.bundle, "bundle", false, "write an OCI runtime bundle (rootfs/ and config.json)")
	cmd.Flags().BoolVar(&f.force, "force", false, "unpack into a non-empty DEST, replacing the image's paths")
	cmd.Flags().StringVar(&f.platform, "platform", "", "platform os/arch[/variant] of a multi-platform image")
	a.jsonFlag(cmd)
	return cmd
}

func (a *app) unpack(ctx context.Context, f unpackFlags, arg, dest string) error {
	plat, err := parsePlatform(f.platform)
	if err != nil {
		return err
	}
	st, release, err := a.leasedStore(ctx)
	if err != nil {
		return err
	}
	defer release()
	md, err := resolveManifest(ctx, st, arg, plat)
	if err != nil {
		return err
	}
	img, err := reader.Open(ctx, st, md)
	if err != nil {
		return err
	}
	cr := reader.NewChunkReader(img, st.frames())
	b := newBar()
	opts := unpack.Options{
		Force:    f.force,
		Warn:     func(path string, err error) { warnf(os.Stderr, "%s: %v", path, err) },
		Progress: func(p unpack.Progress) { b.update("unpacking", p.Bytes, -1, true) },
	}
	do := unpack.Unpack
	if f.bundle {
		do = unpack.Bundle
	}
	stats, err := do(ctx, img, cr, dest, opts)
	b.done()
	if err != nil {
		if errors.Is(err, unpack.ErrNotEmpty) {
			return fmt.Errorf("%w (use --force to unpack over it)", err)
		}
		return err
	}
	if a.jsonOut {
		return printJSON(struct {
			Manifest string       `json:"manifest"`
			Dest     string       `json:"dest"`
			Stats    unpack.Stats `json:"stats"`
		}{md.Digest.String(), dest, stats})
	}
	fmt.Fprintf(os.Stderr, "unpacked %s: %d entries, %s\n", md.Digest, stats.Entries, humanBytes(stats.Bytes))
	return nil
}
