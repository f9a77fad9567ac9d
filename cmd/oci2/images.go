package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/oci2/oci2/internal/refname"
	"github.com/oci2/oci2/store/admin"
)

// imageRow is one line of `images`.
type imageRow struct {
	Name         string   `json:"name"`
	Digest       string   `json:"digest"`
	Platforms    []string `json:"platforms"`
	LogicalBytes int64    `json:"logical_bytes"`
	// Problem, when not empty, is why the image is broken.
	Problem string `json:"problem,omitempty"`
}

// brokenHelp is how images and du document broken images.
const brokenHelp = `An image that cannot be read (a blob it names is missing or invalid, or its
trees break the format) is still listed, marked BROKEN, with its problem on
stderr; the command then exits with code 3 (as check does when it finds
problems) after listing every image. oci2 check says more; rm and gc remove it.`

func (a *app) imagesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List named images",
		Long:  "List named images.\n\n" + brokenHelp,
		Args:  exactArgs(0, "no arguments"),
		RunE:  func(cmd *cobra.Command, args []string) error { return a.images(cmd.Context()) },
	}
	a.jsonFlag(cmd)
	return cmd
}

func (a *app) images(ctx context.Context) error {
	st, err := a.store()
	if err != nil {
		return err
	}
	refs, err := st.ListRefs(ctx)
	if err != nil {
		return err
	}
	rows := []imageRow{}
	sizes := map[string]int64{} // per manifest digest
	for _, ref := range refs {
		row := imageRow{Name: ref.Name, Digest: ref.Descriptor.Digest.String(), Platforms: []string{}}
		if err := fillImageRow(ctx, st, ref.Descriptor, &row, sizes); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			row.Problem = err.Error()
		}
		rows = append(rows, row)
	}
	if a.jsonOut {
		if err := printJSON(rows); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tDIGEST\tPLATFORM\tSIZE")
		for _, r := range rows {
			size := humanBytes(r.LogicalBytes)
			if r.Problem != "" {
				size = "BROKEN"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", refname.Familiar(r.Name), shortDigest(r.Digest),
				strings.Join(r.Platforms, ","), size)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	broken := 0
	for _, r := range rows {
		if r.Problem != "" {
			broken++
			warnf(os.Stderr, "image %s is broken: %s", refname.Familiar(r.Name), r.Problem)
		}
	}
	return brokenImages(broken)
}

// brokenImages is the result of a listing that found broken images: exit
// code 3, as check's.
func brokenImages(n int) error {
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d broken images (run oci2 check): %w", n, errProblems)
}

// fillImageRow fills the platforms and logical size of the image desc
// names; sizes caches logical sizes per manifest digest.
func fillImageRow(ctx context.Context, st *storeHandle, desc ocispec.Descriptor, row *imageRow, sizes map[string]int64) error {
	manifests, err := listManifests(ctx, st, desc)
	if err != nil {
		return err
	}
	for _, m := range manifests {
		row.Platforms = append(row.Platforms, platformString(m.Platform))
		n, ok := sizes[m.Digest.String()]
		if !ok {
			if n, err = admin.LogicalBytes(ctx, st, m); err != nil {
				return err
			}
			sizes[m.Digest.String()] = n
		}
		row.LogicalBytes += n
	}
	return nil
}

// shortDigest abbreviates sha256:<hex> to 12 hex digits for tables.
func shortDigest(d string) string {
	if h, ok := strings.CutPrefix(d, "sha256:"); ok && len(h) > 12 {
		return h[:12]
	}
	return d
}

// listManifests returns the manifests desc reaches: itself, or an index's
// entries (one level: oci2 indexes are flat).
func listManifests(ctx context.Context, st *storeHandle, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	if desc.MediaType == ocispec.MediaTypeImageManifest {
		return []ocispec.Descriptor{desc}, nil
	}
	var idx ocispec.Index
	if err := readJSON(ctx, st, desc, &idx); err != nil {
		return nil, err
	}
	return idx.Manifests, nil
}
