// Command sbom-scanner is the SBOM generator of the CI example: syft
// (github.com/anchore/syft) used as a library behind BuildKit's scanner
// protocol, as docker/buildkit-syft-scanner does. That scanner's module is
// not served by the Go module proxy this project builds from ("403
// Forbidden: This module version is not available"); syft is, so this is
// the same cataloguing in a few lines of glue.
//
// The protocol (BuildKit frontend/attestations/sbom): the scanner image's
// entrypoint runs with the filesystem to scan mounted read-only at
// $BUILDKIT_SCAN_SOURCE, optional extra filesystems (build stages, the
// context) as the subdirectories of $BUILDKIT_SCAN_SOURCE_EXTRAS, and
// writes one in-toto statement per scanned filesystem, named after it
// (sbom.spdx.json for the core one), into $BUILDKIT_SCAN_DESTINATION.
// BuildKit fills in the subjects. Each is scanned with syft's default
// catalogers for a directory (dpkg, apk, rpm, Go binaries, language
// package files, ...) and encoded as SPDX 2.3 JSON.
//
// It is its own Go module so that syft's large dependency tree stays out
// of the main module's go.mod: build it with
// `cd examples/ci/sbom-scanner && CGO_ENABLED=0 go build`.
package main
