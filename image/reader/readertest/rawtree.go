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

// Bomb returns the streams of a tree of `levels` directories each holding
// two subdirectories that share one child tree: 2^(levels+1) entries from
// levels+2 tree objects (the metadata bomb the reader's limits stop).
func Bomb(levels int) Streams {
	t := RawTree()
	trees := [][]byte{t}
	for i := 0; i < levels; i++ {
		id := format.Sum(t)
		t = RawTree(
			format.Entry{Name: "a", Type: format.TypeDir, Mode: 0o755, Tree: id},
			format.Entry{Name: "b", Type: format.TypeDir, Mode: 0o755, Tree: id})
		trees = append(trees, t)
	}
	w := Wrapper(format.Sum(t), format.Entry{Mode: 0o755})
	s := Streams{Root: format.Sum(w), Trees: [][]byte{w}}
	for i := len(trees) - 1; i >= 0; i-- {
		s.Trees = append(s.Trees, trees[i])
	}
	return s
}
