package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	// syft's rpm cataloguer reads newer RPM databases (SQLite) through
	// database/sql and leaves the driver to the program, as syft's own
	// command does: this one is pure Go, so CGO_ENABLED=0 still builds.
	_ "modernc.org/sqlite"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "sbom-scanner:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	src, dst := os.Getenv("BUILDKIT_SCAN_SOURCE"), os.Getenv("BUILDKIT_SCAN_DESTINATION")
	if src == "" || dst == "" {
		return fmt.Errorf("BUILDKIT_SCAN_SOURCE and BUILDKIT_SCAN_DESTINATION must be set (run by BuildKit as an SBOM generator)")
	}
	if err := scanTo(ctx, src, dst); err != nil {
		return err
	}
	extras := os.Getenv("BUILDKIT_SCAN_SOURCE_EXTRAS")
	if extras == "" {
		return nil
	}
	ents, err := os.ReadDir(extras)
	if err != nil {
		return fmt.Errorf("reading extras: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := scanTo(ctx, filepath.Join(extras, e.Name()), dst); err != nil {
				return err
			}
		}
	}
	return nil
}
