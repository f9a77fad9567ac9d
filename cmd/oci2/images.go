package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/oci2/oci2/maint"
	"github.com/oci2/oci2/refname"
)

// imageRow is one line of `images`.
type imageRow struct {
	Name         string   `json:"name"`
	Digest       string   `json:"digest"`
	Platforms    []string `json:"platforms"`
	LogicalBytes int64    `json:"logical_bytes"`
}

func (a *app) imagesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List named images",
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
		manifests, err := listManifests(ctx, st, ref.Descriptor)
		if err != nil {
			return fmt.Errorf("image %s: %w", ref.Name, err)
		}
		for _, m := range manifests {
			row.Platforms = append(row.Platforms, platformString(m.Platform))
			n, ok := sizes[m.Digest.String()]
			if !ok {
				if n, err = maint.LogicalBytes(ctx, st, m); err != nil {
					return fmt.Errorf("image %s: %w", ref.Name, err)
				}
				sizes[m.Digest.String()] = n
			}
			row.LogicalBytes += n
		}
		rows = append(rows, row)
	}
	if a.jsonOut {
		return printJSON(rows)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDIGEST\tPLATFORM\tSIZE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", refname.Familiar(r.Name), shortDigest(r.Digest),
			strings.Join(r.Platforms, ","), humanBytes(r.LogicalBytes))
	}
	return tw.Flush()
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
