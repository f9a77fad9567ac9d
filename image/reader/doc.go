// Package reader opens OCIv2 images: verified manifests, configs and pack
// indexes, chunks read through frames (local frames or pack ranges), and a
// bounded walk of the Merkle tree.
package reader
