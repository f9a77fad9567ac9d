// Package exporter is the BuildKit exporter "oci2" (--output type=oci2): it
// mounts a solved result read-only and writes it as an OCIv2 image into the
// daemon's local chunk store, without tar on any path.
package exporter
