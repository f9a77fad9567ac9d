// Package convert converts between ordinary OCI images (tar layers, in an
// oci: layout directory or an oci-archive: tarball) and OCIv2 images in a
// store: Import applies the layers into one tree and writes it with the
// writer; Export walks an OCIv2 image and writes a single-layer OCI image.
package convert
