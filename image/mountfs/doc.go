// Package mountfs serves an OCIv2 image as a read-only FUSE filesystem
// without unpacking it: the image's metadata is walked and validated once
// at mount (SPEC.md §7 limits, hardlink rules) into an inode table, and file
// data is read on demand through a verified chunk reader, so every byte
// served was checked against the image's Merkle tree.
package mountfs
