package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestScan: the scanner, run as BuildKit runs it, writes sbom.spdx.json
// listing the installed dpkg and apk packages and the modules of a Go
// binary (this test's own), and nothing for a removed package.
func TestScan(t *testing.T) {
	root := filepath.Join(t.TempDir(), "sbom")
	dst := t.TempDir()
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("var/lib/dpkg/status", "Package: libfoo\nStatus: install ok installed\nVersion: 1.2-3\nArchitecture: amd64\n\n"+
		"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n")
	write("lib/apk/db/installed", "P:musl\nV:1.2.5-r0\nA:x86_64\n\n")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	write("usr/bin/app", string(self))
	if err := scanTo(root, dst, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	var st struct {
		PredicateType string `json:"predicateType"`
		Predicate     struct {
			Packages []struct {
				Refs []struct {
					Locator string `json:"referenceLocator"`
				} `json:"externalRefs"`
			} `json:"packages"`
		} `json:"predicate"`
	}
	b, err := os.ReadFile(filepath.Join(dst, "sbom.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	var purls []string
	for _, p := range st.Predicate.Packages {
		purls = append(purls, p.Refs[0].Locator)
	}
	for _, want := range []string{"pkg:deb/debian/libfoo@1.2-3?arch=amd64", "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64",
		"pkg:golang/github.com/spdx/tools-golang@v0.5.7"} {
		if !slices.Contains(purls, want) {
			t.Errorf("SBOM lacks %s: %v", want, purls)
		}
	}
	if st.PredicateType != spdxPredicate || slices.ContainsFunc(purls, func(s string) bool { return s == "pkg:deb/debian/gone@1" }) {
		t.Errorf("statement %s, packages %v", st.PredicateType, purls)
	}
}
