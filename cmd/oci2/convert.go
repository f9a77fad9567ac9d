package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/oci2/oci2/image/convert"
	"github.com/oci2/oci2/internal/refname"
)

type importFlags struct {
	tags     []string
	platform string
	epoch    string
	tempDir  string
}

// importResult is import's --json output.
type importResult struct {
	Digest   string   `json:"digest"`
	Manifest string   `json:"manifest"`
	Source   string   `json:"source"`
	Tags     []string `json:"tags"`
	Stats    any      `json:"stats"`
}

func (a *app) importCmd() *cobra.Command {
	var f importFlags
	cmd := &cobra.Command{
		Use:   "import [--tag NAME]... [--platform os/arch] SRC",
		Short: "Convert an ordinary OCI image (oci:DIR[:REF] or oci-archive:FILE[:REF]) to an oci2 image",
		Long: `Convert an ordinary OCI image to an oci2 image. SRC is in skopeo syntax:
oci:DIR[:REF] (an OCI image layout) or oci-archive:FILE[:REF] (a tar of one).
Every blob and layer diff_id is verified and the layers are applied in order
(whiteouts, opaque directories). Without --tag, the image is named REF.`,
		Args: exactArgs(1, "SRC"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.importImage(cmd.Context(), f, args[0]) },
	}
	cmd.Flags().StringArrayVarP(&f.tags, "tag", "t", nil, "name the image (repeatable)")
	cmd.Flags().StringVar(&f.platform, "platform", "", "platform os/arch[/variant] of a multi-platform source")
	cmd.Flags().StringVar(&f.epoch, "source-date-epoch", "", "clamp mtimes to these Unix seconds (default $SOURCE_DATE_EPOCH)")
	cmd.Flags().StringVar(&f.tempDir, "temp-dir", "", "directory spooling file contents (default $TMPDIR)")
	a.jsonFlag(cmd)
	return cmd
}

func (a *app) importImage(ctx context.Context, f importFlags, src string) error {
	loc, err := convert.ParseLocation(src)
	if err != nil {
		return usageError{err}
	}
	var tags []string
	for _, t := range f.tags {
		name, err := refname.NormalizeTag(t)
		if err != nil {
			return usageError{err}
		}
		tags = append(tags, name)
	}
	if len(tags) == 0 && loc.Ref != "" && !strings.HasPrefix(loc.Ref, "@") {
		name, err := refname.NormalizeTag(loc.Ref)
		if err != nil {
			return usagef("naming the image after %q: %v (use --tag)", loc.Ref, err)
		}
		tags = []string{name}
	}
	plat, err := parsePlatform(f.platform)
	if err != nil {
		return err
	}
	epoch, err := parseEpoch(f.epoch)
	if err != nil {
		return err
	}
	st, release, err := a.leasedStore(ctx)
	if err != nil {
		return err
	}
	defer release()
	b := newBar()
	res, err := convert.Import(ctx, st, src, convert.ImportOptions{
		Tags: tags, Platform: plat, TempDir: f.tempDir, SourceDateEpoch: epoch,
		Warn: func(path string, err error) { warnf(os.Stderr, "%s: %v", path, err) },
		Progress: func(p convert.ImportProgress) {
			switch {
			case p.Phase == "layer":
				b.update(fmt.Sprintf("layer %d/%d", p.Layer, p.Layers), p.LayerBytes, p.LayerSize, true)
			case p.Write != nil:
				createProgress(b, *p.Write)
			}
		},
	})
	b.done()
	if err != nil {
		return err
	}
	out := importResult{Digest: res.Index.Digest.String(), Manifest: res.Manifest.Digest.String(),
		Source: res.Source.Digest.String(), Tags: res.Tags, Stats: res.Stats}
	if out.Tags == nil {
		out.Tags = []string{}
		warnf(os.Stderr, "no --tag: the image is not named and the next gc deletes it")
	}
	if a.jsonOut {
		return printJSON(out)
	}
	fmt.Println(out.Digest)
	for _, t := range out.Tags {
		fmt.Printf("tagged %s\n", t)
	}
	fmt.Printf("%d entries, %s logical, %s new\n", res.Stats.Entries, humanBytes(res.Stats.LogicalBytes), humanBytes(res.Stats.StoredNew))
	return nil
}

type exportFlags struct {
	platform    string
	compression string
}

func (a *app) exportCmd() *cobra.Command {
	var f exportFlags
	cmd := &cobra.Command{
		Use:   "export [--platform os/arch] [--compression gzip|zstd|none] NAME|DIGEST DST",
		Short: "Write an image as an ordinary single-layer OCI image (oci:DIR[:TAG] or oci-archive:FILE[:TAG])",
		Long: `Write an image as an ordinary OCI image with one tar layer, which stock
clients (docker, containerd, podman, skopeo) accept. DST is in skopeo syntax:
oci:DIR[:TAG] (an OCI image layout, other images in it are kept) or
oci-archive:FILE[:TAG].`,
		Args: exactArgs(2, "NAME|DIGEST and DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.exportImage(cmd.Context(), f, args[0], args[1])
		},
	}
	cmd.Flags().StringVar(&f.platform, "platform", "", "platform os/arch[/variant] of a multi-platform image")
	cmd.Flags().StringVar(&f.compression, "compression", "gzip", "layer compression: gzip, zstd or none")
	a.jsonFlag(cmd)
	return cmd
}

func (a *app) exportImage(ctx context.Context, f exportFlags, arg, dst string) error {
	if _, err := convert.ParseLocation(dst); err != nil {
		return usageError{err}
	}
	c, err := convert.ParseCompression(f.compression)
	if err != nil {
		return usageError{err}
	}
	plat, err := parsePlatform(f.platform)
	if err != nil {
		return err
	}
	ref, err := refname.Parse(arg)
	if err != nil {
		return usageError{err}
	}
	key := ref.Name
	if ref.Digest != "" {
		key = ref.Digest.String()
	}
	st, release, err := a.leasedStore(ctx)
	if err != nil {
		return err
	}
	defer release()
	b := newBar()
	res, err := convert.Export(ctx, st, key, dst, convert.ExportOptions{
		Platform: plat, Compression: c, Frames: st.frames(),
		Progress: func(p convert.ExportProgress) { b.update("writing layer", p.Bytes, -1, true) },
	})
	b.done()
	if err != nil {
		return err
	}
	if a.jsonOut {
		return printJSON(res)
	}
	fmt.Println(res.Manifest.Digest)
	fmt.Printf("layer %s (%s, diff_id %s)\n", res.Layer.Digest, humanBytes(res.Layer.Size), res.DiffID)
	return nil
}
