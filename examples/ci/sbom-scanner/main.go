package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// statement is an in-toto statement without subjects (BuildKit adds them).
type statement struct {
	Type          string `json:"_type"`
	PredicateType string `json:"predicateType"`
	Predicate     any    `json:"predicate"`
}

const (
	inTotoStatement = "https://in-toto.io/Statement/v0.1"
	spdxPredicate   = "https://spdx.dev/Document"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sbom-scanner:", err)
		os.Exit(1)
	}
}

func run() error {
	src, dst := os.Getenv("BUILDKIT_SCAN_SOURCE"), os.Getenv("BUILDKIT_SCAN_DESTINATION")
	if src == "" || dst == "" {
		return fmt.Errorf("BUILDKIT_SCAN_SOURCE and BUILDKIT_SCAN_DESTINATION must be set (run by BuildKit as an SBOM generator)")
	}
	created := time.Now().UTC()
	if err := scanTo(src, dst, created); err != nil {
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
			if err := scanTo(filepath.Join(extras, e.Name()), dst, created); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanTo scans the filesystem at root and writes its statement as
// dst/<base name of root>.spdx.json.
func scanTo(root, dst string, created time.Time) error {
	name := filepath.Base(root)
	doc, err := scan(root, name, created)
	if err != nil {
		return fmt.Errorf("scanning %s: %w", name, err)
	}
	b, err := json.Marshal(statement{Type: inTotoStatement, PredicateType: spdxPredicate, Predicate: doc})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dst, name+".spdx.json"), b, 0o644)
}
