// Package unpack writes an OCIv2 image's filesystem into a directory, or an
// OCI runtime bundle, without ever writing outside it.
package unpack
