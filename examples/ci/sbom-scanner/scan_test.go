package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestScan: the scanner, run as BuildKit runs it (the core filesystem at
// BUILDKIT_SCAN_SOURCE, one extra under BUILDKIT_SCAN_SOURCE_EXTRAS), writes
// one SPDX in-toto statement per filesystem listing the installed dpkg
// packages of a Debian tree and the modules of a Go binary (this test's
// own, which links syft), and nothing for a removed package.
func TestScan(t *testing.T) {
	dir := t.TempDir()
	root, extra, dst := filepath.Join(dir, "sbom"), filepath.Join(dir, "extras", "sbom_stage"), filepath.Join(dir, "out")
	write := func(root, p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(root, "etc/os-release", "ID=debian\nVERSION_ID=\"13\"\n")
	write(root, "var/lib/dpkg/status", "Package: libfoo\nStatus: install ok installed\nVersion: 1.2-3\nArchitecture: amd64\n\n"+
		"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	write(extra, "usr/bin/app", string(self))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BUILDKIT_SCAN_SOURCE", root)
	t.Setenv("BUILDKIT_SCAN_SOURCE_EXTRAS", filepath.Dir(extra))
	t.Setenv("BUILDKIT_SCAN_DESTINATION", dst)
	if err := run(t.Context()); err != nil {
		t.Fatal(err)
	}

	core := purls(t, filepath.Join(dst, "sbom.spdx.json"))
	if !slices.ContainsFunc(core, func(s string) bool { return strings.HasPrefix(s, "pkg:deb/debian/libfoo@1.2-3?arch=amd64") }) {
		t.Errorf("core SBOM lacks the dpkg package libfoo: %v", core)
	}
	if slices.ContainsFunc(core, func(s string) bool { return strings.Contains(s, "/gone@") }) {
		t.Errorf("core SBOM lists the removed package: %v", core)
	}
	stage := purls(t, filepath.Join(dst, "sbom_stage.spdx.json"))
	if !slices.ContainsFunc(stage, func(s string) bool { return strings.HasPrefix(s, "pkg:golang/github.com/anchore/syft@") }) {
		t.Errorf("extra SBOM lacks the Go binary's syft module: %v", stage)
	}
}

// purls reads the in-toto statement at path, checks it carries an SPDX
// document, and returns its packages' purls.
func purls(t *testing.T, path string) []string {
	t.Helper()
	var st struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
		Predicate     struct {
			SPDXVersion string `json:"spdxVersion"`
			Packages    []struct {
				Refs []struct {
					Type    string `json:"referenceType"`
					Locator string `json:"referenceLocator"`
				} `json:"externalRefs"`
			} `json:"packages"`
		} `json:"predicate"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != inTotoStatement || st.PredicateType != spdxPredicate || st.Predicate.SPDXVersion != "SPDX-2.3" {
		t.Fatalf("%s: %s %s %s, want an in-toto statement of an SPDX-2.3 document", path, st.Type, st.PredicateType, st.Predicate.SPDXVersion)
	}
	var out []string
	for _, p := range st.Predicate.Packages {
		for _, r := range p.Refs {
			if r.Type == "purl" {
				out = append(out, r.Locator)
			}
		}
	}
	return out
}
