// Command sbom-scanner is a MINIMAL, FALLBACK SBOM generator for BuildKit's
// scanner protocol, used by the CI example and its tests because BuildKit's
// own scanner, github.com/docker/buildkit-syft-scanner, is not served by the
// Go module proxy this project builds from ("403 Forbidden: This module
// version is not available"). It is not syft: it lists what package
// databases and Go binaries say about themselves (dpkg, apk, Go build info)
// and nothing else. Swap it for docker/buildkit-syft-scanner wherever that
// image can be pulled.
//
// The protocol (BuildKit frontend/attestations/sbom): the scanner image's
// entrypoint runs with the filesystem to scan mounted read-only at
// $BUILDKIT_SCAN_SOURCE, optional extra filesystems (build stages, the
// context) as the subdirectories of $BUILDKIT_SCAN_SOURCE_EXTRAS, and
// writes one in-toto statement per scanned filesystem, named after it
// (sbom.spdx.json for the core one), into $BUILDKIT_SCAN_DESTINATION.
// BuildKit fills in the subjects.
package main
