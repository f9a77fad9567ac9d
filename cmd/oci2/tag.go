package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/oci2/oci2/internal/refname"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/admin"
)

func (a *app) tagCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SRC DST",
		Short: "Name the image SRC (a name or digest) also DST",
		Args:  exactArgs(2, "SRC and DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.tag(cmd.Context(), args[0], args[1])
		},
	}
}

func (a *app) tag(ctx context.Context, src, dst string) error {
	name, err := refname.NormalizeTag(dst)
	if err != nil {
		return usageError{err}
	}
	st, release, err := a.leasedStore(ctx)
	if err != nil {
		return err
	}
	defer release()
	t, err := resolveTarget(ctx, st, src)
	if err != nil {
		return err
	}
	desc := t.Descriptor
	// A pull that found invalid trees left the image's blobs unnamed: a
	// tag by digest must not name them either.
	if err := admin.ValidateImage(ctx, st, desc); err != nil {
		return fmt.Errorf("tag %s: %w", src, err)
	}
	desc.Annotations = nil // the store sets the ref name annotation itself
	desc.Platform = nil
	return st.SetRef(ctx, name, desc)
}

func (a *app) rmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove image names (gc frees the space no name reaches)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("rm wants at least one NAME")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.rm(cmd.Context(), args)
		},
	}
}

func (a *app) rm(ctx context.Context, args []string) error {
	var names []string
	for _, arg := range args {
		name, err := refname.NormalizeTag(arg)
		if err != nil {
			return usageError{err}
		}
		names = append(names, name)
	}
	st, err := a.store()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if err := st.DeleteRef(ctx, name); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				err = fmt.Errorf("image %s: %w", name, store.ErrNotFound)
			}
			errs = append(errs, err)
			continue
		}
		fmt.Printf("removed %s\n", name)
	}
	return errors.Join(errs...)
}
