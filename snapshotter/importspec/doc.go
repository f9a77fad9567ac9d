// Package importspec is what `oci2 containerd import` and oci2-snapshotter
// agree on without importing containerd: the snapshot labels that name an
// OCIv2 image and where its data comes from, and the description of a
// containerd image that `oci2-snapshotter import` reads as JSON on stdin
// and writes into containerd. Keeping it free of containerd's packages
// keeps grpc and containerd's client out of the oci2 binary.
package importspec
