// Package daemon is what buildkitd-oci2 adds to BuildKit's buildkitd: one
// oci2 store per daemon (the [oci2] table of buildkitd.toml, or
// --oci2-store), workers whose Exporter also knows "oci2" and whose
// sources build on the store's OCIv2 images, the store's retention, and
// the exporters' files caches saved across restarts.
//
// Open starts the periodic jobs (retention, saving files caches); Close
// stops them and waits. Wrap hands workers the daemon, and the last
// wrapped worker's Close closes it, since buildkitd closes its workers on
// a graceful stop and has no other hook. cmd/buildkitd-oci2 calls Wrap
// from its one change to upstream's files (UPSTREAM.md there).
package daemon
