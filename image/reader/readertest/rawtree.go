package readertest

import "github.com/oci2/oci2/format"

// RawTree encodes entries as a tree object (SPEC.md §4.1) exactly as given:
// no validation and no sorting, so tests can make invalid objects (names
// with "/" or "..", unsorted or duplicate entries, sizes that disagree with
// extents, ...).
func RawTree(entries ...format.Entry) []byte {
	return format.EncodeTreeUnchecked(entries...)
}

// Wrapper is the root wrapper tree (SPEC.md §4.3) around root, with the root
// directory's metadata taken from meta (its Name, Type and Tree are set).
func Wrapper(root format.ChunkID, meta format.Entry) []byte {
	meta.Name, meta.Type, meta.Tree = "rootfs", format.TypeDir, root
	return RawTree(meta)
}
