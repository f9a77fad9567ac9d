// Package exporter is the BuildKit exporter "oci2" (--output type=oci2): it
// mounts a solved result read-only and writes it as an OCIv2 image into the
// daemon's local chunk store, without tar on any path.
//
// An export reuses earlier work at three levels: the walked trees of layer
// chains (TreeCache: only the overlayfs upper directories of the layers
// above a known chain are read), file identity in BuildKit's immutable
// snapshots (SnapshotFileCache: an unchanged file gets its extents without
// being read), and verified content (a file a rebuild re-created gets its
// last extents as a writer.Node.Candidate, checked against its bytes).
// Only new chunks are compressed and only new frames written. Design:
// SPEC.md §8.3.
package exporter
