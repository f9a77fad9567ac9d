// Package blobdir reads blobs from a read-only directory of files named by
// digest (DIR/sha256/<hex>, the blobs/ directory of an OCI image layout),
// such as the blobs a BuildKit build step fetched with llb.ImageBlob.
package blobdir
