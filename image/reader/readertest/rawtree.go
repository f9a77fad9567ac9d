package readertest

import (
	"encoding/binary"

	"github.com/oci2/oci2/format"
)

// RawTree encodes entries as a tree object (SPEC.md §4.1) exactly as given:
// no validation and no sorting, so tests can make invalid objects (names
// with "/" or "..", unsorted or duplicate entries, sizes that disagree with
// extents, ...).
func RawTree(entries ...format.Entry) []byte {
	b := append([]byte("oci2tree"), 1)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for i := range entries {
		b = appendEntry(b, &entries[i])
	}
	return b
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendEntry(b []byte, e *format.Entry) []byte {
	b = appendBytes(b, []byte(e.Name))
	b = append(b, byte(e.Type))
	b = binary.AppendUvarint(b, uint64(e.Mode))
	b = binary.AppendUvarint(b, uint64(e.UID))
	b = binary.AppendUvarint(b, uint64(e.GID))
	b = binary.AppendVarint(b, e.MtimeSec)
	b = binary.AppendUvarint(b, uint64(e.MtimeNsec))
	b = binary.AppendUvarint(b, uint64(len(e.Xattrs)))
	for _, x := range e.Xattrs {
		b = appendBytes(b, []byte(x.Name))
		b = appendBytes(b, x.Value)
	}
	switch e.Type {
	case format.TypeDir:
		b = append(b, e.Tree[:]...)
	case format.TypeReg:
		b = binary.AppendUvarint(b, e.Size)
		b = binary.AppendUvarint(b, uint64(len(e.Extents)))
		for _, x := range e.Extents {
			if x.Zero {
				b = append(b, 1)
				b = binary.AppendUvarint(b, x.Length)
			} else {
				b = append(b, 0)
				b = binary.AppendUvarint(b, x.Length)
				b = append(b, x.Chunk[:]...)
			}
		}
	case format.TypeSymlink, format.TypeHardlink:
		b = appendBytes(b, []byte(e.Target))
	case format.TypeChar, format.TypeBlock:
		b = binary.AppendUvarint(b, uint64(e.DevMajor))
		b = binary.AppendUvarint(b, uint64(e.DevMinor))
	}
	b = binary.AppendUvarint(b, uint64(len(e.Extensions)))
	for _, x := range e.Extensions {
		b = binary.AppendUvarint(b, x.Tag)
		b = appendBytes(b, x.Value)
	}
	return b
}

// Wrapper is the root wrapper tree (SPEC.md §4.3) around root, with the root
// directory's metadata taken from meta (its Name, Type and Tree are set).
func Wrapper(root format.ChunkID, meta format.Entry) []byte {
	meta.Name, meta.Type, meta.Tree = "rootfs", format.TypeDir, root
	return RawTree(meta)
}
