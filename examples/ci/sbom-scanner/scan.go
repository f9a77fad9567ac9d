package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/format/spdxjson"
)

// statement is an in-toto statement without subjects (BuildKit adds them).
type statement struct {
	Type          string          `json:"_type"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

const (
	inTotoStatement = "https://in-toto.io/Statement/v0.1"
	spdxPredicate   = "https://spdx.dev/Document"
)

// scan catalogues the filesystem at root with syft's default catalogers
// and returns the SBOM as an SPDX 2.3 JSON document.
func scan(ctx context.Context, root string) ([]byte, error) {
	// The base path keeps the image's absolute symlinks inside root: the
	// mount is another system's filesystem, not this one's.
	src, err := syft.GetSource(ctx, root, syft.DefaultGetSourceConfig().WithSources("dir").WithBasePath(root))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", root, err)
	}
	defer src.Close()
	s, err := syft.CreateSBOM(ctx, src, syft.DefaultCreateSBOMConfig())
	if err != nil {
		return nil, fmt.Errorf("cataloguing %s: %w", root, err)
	}
	enc, err := spdxjson.NewFormatEncoderWithConfig(spdxjson.DefaultEncoderConfig())
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := enc.Encode(&buf, *s); err != nil {
		return nil, fmt.Errorf("encoding the SPDX document: %w", err)
	}
	return buf.Bytes(), nil
}

// scanTo scans the filesystem at root and writes its statement as
// dst/<base name of root>.spdx.json (BuildKit names the core filesystem
// "sbom", so the core statement is sbom.spdx.json).
func scanTo(ctx context.Context, root, dst string) error {
	name := filepath.Base(root)
	doc, err := scan(ctx, root)
	if err != nil {
		return fmt.Errorf("scanning %s: %w", name, err)
	}
	b, err := json.Marshal(statement{Type: inTotoStatement, PredicateType: spdxPredicate, Predicate: doc})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dst, name+".spdx.json"), b, 0o644); err != nil {
		return fmt.Errorf("writing the statement: %w", err)
	}
	return nil
}
