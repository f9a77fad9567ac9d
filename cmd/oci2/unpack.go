package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/unpack"
	"github.com/oci2/oci2/store/blobdir"
)

type unpackFlags struct {
	bundle   bool
	force    bool
	platform string
	blobs    string
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
are regular files inside the rootfs.

With --blobs DIR, the image is read from DIR instead of the store: a
directory of blob files named DIR/sha256/<hex> (an OCI layout's blobs/)
holding the manifest, its config, pack indexes and packs, and the argument
is the manifest's digest. The # syntax= frontend unpacks bases so, from the
blobs a stock BuildKit fetched for it.`,
		Args: exactArgs(2, "NAME|DIGEST and DEST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.unpack(cmd.Context(), f, args[0], args[1])
		},
	}
	cmd.Flags().BoolVar(&f.bundle, "bundle", false, "write an OCI runtime bundle (rootfs/ and config.json)")
	cmd.Flags().BoolVar(&f.force, "force", false, "unpack into a non-empty DEST, replacing the image's paths")
	cmd.Flags().StringVar(&f.platform, "platform", "", "platform os/arch[/variant] of a multi-platform image")
	cmd.Flags().StringVar(&f.blobs, "blobs", "", "read the image (DIGEST of its manifest) from blob files DIR/sha256/<hex>, not the store")
	a.jsonFlag(cmd)
	return cmd
}

func (a *app) unpack(ctx context.Context, f unpackFlags, arg, dest string) error {
	img, cr, release, err := a.unpackSource(ctx, f, arg)
	if err != nil {
		return err
	}
	defer release()
	md := img.Descriptor
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

// unpackSource opens the image arg names: in the store, or with --blobs
// as a manifest digest in a directory of blob files.
func (a *app) unpackSource(ctx context.Context, f unpackFlags, arg string) (*reader.Image, *reader.ChunkReader, func(), error) {
	if f.blobs != "" {
		dg, err := digest.Parse(arg)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--blobs: %q is not a manifest digest: %w", arg, err)
		}
		bd := blobdir.New(f.blobs)
		img, err := reader.Open(ctx, bd, ocispec.Descriptor{Digest: dg})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--blobs %s: %w", f.blobs, err)
		}
		return img, reader.NewChunkReader(img, reader.PackRanges(bd)), func() {}, nil
	}
	plat, err := parsePlatform(f.platform)
	if err != nil {
		return nil, nil, nil, err
	}
	st, release, err := a.leasedStore(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	md, err := resolveManifest(ctx, st, arg, plat)
	if err == nil {
		var img *reader.Image
		if img, err = reader.Open(ctx, st, md); err == nil {
			return img, reader.NewChunkReader(img, st.frames()), release, nil
		}
	}
	release()
	return nil, nil, nil, err
}
