// Command buildkitd-oci2 is BuildKit's buildkitd (v0.34.2) with one more
// exporter, "oci2": every upstream flag, buildkitd.toml key and exporter
// works unchanged, and `--output type=oci2,name=NAME` writes an OCIv2 image
// into the daemon's own oci2 store (--oci2-store, or [oci2] store in
// buildkitd.toml; default <root>/oci2).
//
// The files carried over from upstream say so in their first line; see
// UPSTREAM.md. The rest is ours: hook.go wires in package buildkit/daemon,
// which holds everything the daemon adds.
package main
