package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/internal/refname"
	"github.com/oci2/oci2/store/index"
)

type createFlags struct {
	tags     []string
	platform string
	epoch    string

	// image config
	entrypoint []string
	cmd        []string
	user       string
	workdir    string
	env        []string
	labels     []string
}

// createResult is create's --json output.
type createResult struct {
	Digest     string       `json:"digest"`   // the image index refs point at
	Manifest   string       `json:"manifest"` // the platform's manifest
	Root       string       `json:"root"`
	Platform   string       `json:"platform"`
	Tags       []string     `json:"tags"`
	Stats      writer.Stats `json:"stats"`
	DedupRatio *float64     `json:"dedup_ratio"` // logical / new stored bytes; null when nothing new was stored
}

func (a *app) createCmd() *cobra.Command {
	var f createFlags
	cmd := &cobra.Command{
		Use:   "create [--tag NAME]... [--platform os/arch] [--source-date-epoch N] SRCDIR",
		Short: "Store the directory SRCDIR as an image",
		Long: `Store the directory SRCDIR as an image and name it with every --tag.

Files are cut into content-defined chunks; chunks the store already holds are
not stored again. With --source-date-epoch (or $SOURCE_DATE_EPOCH) every
mtime later than the epoch is clamped to it and the config's created time is
set to it, so the same tree gives the same digest on every machine.`,
		Args: exactArgs(1, "SRCDIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.create(cmd.Context(), f, args[0])
		},
	}
	cmd.Flags().StringArrayVarP(&f.tags, "tag", "t", nil, "name the image (repeatable), e.g. hello or localhost:5000/a/b:t")
	cmd.Flags().StringVar(&f.platform, "platform", "", "platform os/arch[/variant] (default: the host's)")
	cmd.Flags().StringVar(&f.epoch, "source-date-epoch", "", "clamp mtimes to these Unix seconds (default $SOURCE_DATE_EPOCH)")
	cmd.Flags().StringArrayVar(&f.entrypoint, "entrypoint", nil, "config entrypoint, one argument per flag (repeatable)")
	cmd.Flags().StringArrayVar(&f.cmd, "cmd", nil, "config cmd, one argument per flag (repeatable)")
	cmd.Flags().StringVar(&f.user, "user", "", "config user (name or uid[:gid])")
	cmd.Flags().StringVar(&f.workdir, "workdir", "", "config working directory")
	cmd.Flags().StringArrayVar(&f.env, "env", nil, "config environment KEY=VALUE (repeatable)")
	cmd.Flags().StringArrayVar(&f.labels, "label", nil, "config label KEY=VALUE (repeatable)")
	a.jsonFlag(cmd)
	return cmd
}

// imageConfig builds the config's runtime part from the flags.
func (f *createFlags) imageConfig() (ocispec.ImageConfig, error) {
	c := ocispec.ImageConfig{Entrypoint: f.entrypoint, Cmd: f.cmd, User: f.user, WorkingDir: f.workdir}
	for _, e := range f.env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return c, usagef("--env %q: want KEY=VALUE", e)
		}
		c.Env = append(c.Env, e)
	}
	for _, l := range f.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return c, usagef("--label %q: want KEY=VALUE", l)
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[k] = v
	}
	return c, nil
}

// parseEpoch reads --source-date-epoch, else $SOURCE_DATE_EPOCH.
func parseEpoch(flag string) (*time.Time, error) {
	s, from := flag, "--source-date-epoch"
	if s == "" {
		s, from = os.Getenv("SOURCE_DATE_EPOCH"), "SOURCE_DATE_EPOCH"
	}
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return nil, usagef("%s=%q: want a non-negative number of seconds", from, s)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

func (a *app) create(ctx context.Context, f createFlags, src string) error {
	var tags []string
	for _, t := range f.tags {
		name, err := refname.NormalizeTag(t)
		if err != nil {
			return usageError{err}
		}
		tags = append(tags, name)
	}
	plat := hostPlatform()
	if p, err := parsePlatform(f.platform); err != nil {
		return err
	} else if p != nil {
		plat = *p
	}
	epoch, err := parseEpoch(f.epoch)
	if err != nil {
		return err
	}
	config, err := f.imageConfig()
	if err != nil {
		return err
	}
	if fi, err := os.Stat(src); err != nil {
		return err
	} else if !fi.IsDir() {
		return usagef("%s is not a directory", src)
	}

	// The lease keeps gc away while the new blobs are not named by a ref.
	// It is taken before the index is built: a gc between the two could
	// delete frames the index would offer for reuse.
	st, release, err := a.leasedStore(ctx)
	if err != nil {
		return err
	}
	defer release()
	idx, err := index.New(ctx, st)
	if err != nil {
		return fmt.Errorf("indexing store: %w", err)
	}
	fc, err := openStatCache(st)
	if err != nil {
		warnf(os.Stderr, "files cache: %v (reading every file)", err)
	}

	root, err := writer.FromDir(ctx, src, writer.DirOptions{
		Warn: func(path string, err error) { warnf(os.Stderr, "%s: %v", path, err) },
	})
	if err != nil {
		return err
	}
	b := newBar()
	opts := writer.Options{
		Config:          ocispec.Image{Platform: plat, Config: config},
		SourceDateEpoch: epoch,
		FrameIndex:      idx,
		StatCache:       fc.cache(),
		Progress:        func(p writer.Progress) { createProgress(b, p) },
	}
	res, desc, err := writer.WriteImage(ctx, st, root, opts, nil)
	b.done()
	if err != nil {
		return err
	}
	if err := fc.save(); err != nil {
		warnf(os.Stderr, "saving files cache: %v", err)
	}
	for _, t := range tags {
		if err := st.SetRef(ctx, t, desc); err != nil {
			return fmt.Errorf("tagging %s: %w", t, err)
		}
	}
	out := createResult{
		Digest: desc.Digest.String(), Manifest: res.Manifest.Digest.String(), Root: res.Root.String(),
		Platform: platformString(&plat), Tags: tags, Stats: res.Stats,
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if res.Stats.StoredNew > 0 {
		r := float64(res.Stats.LogicalBytes) / float64(res.Stats.StoredNew)
		out.DedupRatio = &r
	}
	if len(tags) == 0 {
		warnf(os.Stderr, "no --tag: the image is not named and the next gc deletes it")
	}
	if a.jsonOut {
		return printJSON(out)
	}
	printCreate(out)
	return nil
}

func createProgress(b *bar, p writer.Progress) {
	switch p.Phase {
	case "data":
		b.update("chunking", p.BytesRead, p.BytesTotal, true)
	default:
		b.update(p.Phase, p.Entries, -1, false)
	}
}

func printCreate(r createResult) {
	fmt.Println(r.Digest)
	for _, t := range r.Tags {
		fmt.Printf("tagged %s\n", t)
	}
	s := r.Stats
	ratio := "all reused"
	if r.DedupRatio != nil {
		ratio = fmt.Sprintf("%.2fx", *r.DedupRatio)
	}
	fmt.Printf("%s: %d entries, %d files, %s logical, %s stored in %d packs, %s new (dedup ratio %s)\n",
		r.Platform, s.Entries, s.Files, humanBytes(s.LogicalBytes), humanBytes(s.StoredBytes), s.Packs,
		humanBytes(s.StoredNew), ratio)
}
