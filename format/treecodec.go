package format

import (
	"bytes"
	"encoding/binary"
)

const (
	treeMagic   = "oci2tree"
	treeVersion = 1

	// Smallest encodings, used to bound counts by the bytes left: an entry
	// is at least name (2) + type + mode + uid + gid + mtime (2) + nxattr +
	// next bytes; an xattr, extent or extension at least 2 bytes.
	minEntrySize = 10
	minItemSize  = 2
)

// Encode validates t (SPEC.md §4.2) and returns its canonical encoding.
func (t *Tree) Encode() ([]byte, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	return t.encodeValid()
}

func (t *Tree) encodeValid() ([]byte, error) {
	b := make([]byte, 0, 16+64*len(t.Entries))
	b = append(b, treeMagic...)
	b = binary.AppendUvarint(b, treeVersion)
	b = binary.AppendUvarint(b, uint64(len(t.Entries)))
	for i := range t.Entries {
		b = t.Entries[i].appendTo(b)
		if len(b) > MaxTreeObjectSize {
			return nil, invalidf("tree object larger than %d bytes", MaxTreeObjectSize)
		}
	}
	return b, nil
}

// EncodeTreeUnchecked encodes entries in the wire form of SPEC.md §4.1
// exactly as given: no validation, no sorting, no size limit. It exists so
// tests and tools can build the invalid objects a decoder must refuse;
// images are written with Tree.Encode.
func EncodeTreeUnchecked(entries ...Entry) []byte {
	b := []byte(treeMagic)
	b = binary.AppendUvarint(b, treeVersion)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for i := range entries {
		b = entries[i].appendTo(b)
	}
	return b
}

func (e *Entry) appendTo(b []byte) []byte {
	b = appendLenString(b, e.Name)
	b = append(b, byte(e.Type))
	b = binary.AppendUvarint(b, uint64(e.Mode))
	b = binary.AppendUvarint(b, uint64(e.UID))
	b = binary.AppendUvarint(b, uint64(e.GID))
	b = binary.AppendVarint(b, e.MtimeSec)
	b = binary.AppendUvarint(b, uint64(e.MtimeNsec))
	b = binary.AppendUvarint(b, uint64(len(e.Xattrs)))
	for _, x := range e.Xattrs {
		b = appendLenString(b, x.Name)
		b = appendLenBytes(b, x.Value)
	}
	switch e.Type {
	case TypeDir:
		b = append(b, e.Tree[:]...)
	case TypeReg:
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
	case TypeSymlink, TypeHardlink:
		b = appendLenString(b, e.Target)
	case TypeChar, TypeBlock:
		b = binary.AppendUvarint(b, uint64(e.DevMajor))
		b = binary.AppendUvarint(b, uint64(e.DevMinor))
	}
	b = binary.AppendUvarint(b, uint64(len(e.Extensions)))
	for _, x := range e.Extensions {
		b = binary.AppendUvarint(b, x.Tag)
		b = appendLenBytes(b, x.Value)
	}
	return b
}

// DecodeTree decodes and validates a tree object; any non-canonical encoding
// is rejected. The result does not alias b.
func DecodeTree(b []byte) (*Tree, error) {
	if len(b) > MaxTreeObjectSize {
		return nil, invalidf("tree object of %d bytes exceeds %d", len(b), MaxTreeObjectSize)
	}
	if !bytes.HasPrefix(b, []byte(treeMagic)) {
		return nil, invalidf("not a tree object: bad magic")
	}
	r := wireReader{b: b, off: len(treeMagic)}
	v, err := r.uvarint("tree version")
	if err != nil {
		return nil, err
	}
	if v != treeVersion {
		return nil, invalidf("unsupported tree version %d", v)
	}
	n, err := r.count(minEntrySize, "tree entry count")
	if err != nil {
		return nil, err
	}
	t := &Tree{}
	if n > 0 {
		t.Entries = make([]Entry, n)
	}
	for i := range t.Entries {
		e := &t.Entries[i]
		if err := e.decode(&r); err != nil {
			if e.Name != "" {
				return nil, prefixed(err, "tree entry %d %q", i, e.Name)
			}
			return nil, prefixed(err, "tree entry %d", i)
		}
	}
	if r.left() != 0 {
		return nil, invalidf("tree object: %d trailing bytes", r.left())
	}
	if err := t.validate(); err != nil {
		return nil, err
	}
	again, err := t.encodeValid()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, invalidf("tree object: non-canonical encoding (differs from its re-encoding at byte %d)",
			firstDiff(again, b))
	}
	return t, nil
}

func (e *Entry) decode(r *wireReader) error {
	name, err := r.lenBytes(MaxNameLen, "name")
	if err != nil {
		return err
	}
	e.Name = string(name)
	typ, err := r.byte1("type")
	if err != nil {
		return err
	}
	e.Type = EntryType(typ)
	if e.Type < TypeDir || e.Type > TypeFifo {
		return invalidf("unknown entry type %d", typ)
	}
	if e.Mode, err = r.uvarint32("mode"); err != nil {
		return err
	}
	if e.UID, err = r.uvarint32("uid"); err != nil {
		return err
	}
	if e.GID, err = r.uvarint32("gid"); err != nil {
		return err
	}
	if e.MtimeSec, err = r.varint("mtime seconds"); err != nil {
		return err
	}
	if e.MtimeNsec, err = r.uvarint32("mtime nanoseconds"); err != nil {
		return err
	}
	if e.Xattrs, err = decodeXattrs(r); err != nil {
		return err
	}
	if err := e.decodePayload(r); err != nil {
		return err
	}
	e.Extensions, err = decodeExtensions(r)
	return err
}

func decodeXattrs(r *wireReader) ([]Xattr, error) {
	n, err := r.uvarint("xattr count")
	if err != nil {
		return nil, err
	}
	if n > MaxXattrs {
		return nil, invalidf("%d xattrs, more than %d", n, MaxXattrs)
	}
	if n > uint64(r.left()/minItemSize) {
		return nil, invalidf("xattr count %d exceeds what the %d bytes left can hold", n, r.left())
	}
	if n == 0 {
		return nil, nil
	}
	xs := make([]Xattr, n)
	for i := range xs {
		name, err := r.lenBytes(MaxXattrNameLen, "xattr name")
		if err != nil {
			return nil, prefixed(err, "xattr %d", i)
		}
		value, err := r.lenBytes(MaxXattrValueLen, "xattr value")
		if err != nil {
			return nil, prefixed(err, "xattr %d %q", i, name)
		}
		xs[i] = Xattr{Name: string(name), Value: bytes.Clone(value)}
	}
	return xs, nil
}

func (e *Entry) decodePayload(r *wireReader) (err error) {
	switch e.Type {
	case TypeDir:
		e.Tree, err = r.id("child tree digest")
	case TypeReg:
		if e.Size, err = r.uvarint("size"); err != nil {
			return err
		}
		e.Extents, err = decodeExtents(r)
	case TypeSymlink, TypeHardlink:
		var t []byte
		t, err = r.lenBytes(MaxLinkLen, "link target")
		e.Target = string(t)
	case TypeChar, TypeBlock:
		if e.DevMajor, err = r.uvarint32("device major"); err != nil {
			return err
		}
		e.DevMinor, err = r.uvarint32("device minor")
	}
	return err
}

func decodeExtents(r *wireReader) ([]Extent, error) {
	n, err := r.count(minItemSize, "extent count")
	if err != nil || n == 0 {
		return nil, err
	}
	xs := make([]Extent, n)
	for i := range xs {
		kind, err := r.byte1("extent kind")
		if err != nil {
			return nil, prefixed(err, "extent %d", i)
		}
		if kind > 1 {
			return nil, invalidf("extent %d: unknown extent kind %d", i, kind)
		}
		xs[i].Zero = kind == 1
		if xs[i].Length, err = r.uvarint("extent length"); err != nil {
			return nil, prefixed(err, "extent %d", i)
		}
		if !xs[i].Zero {
			if xs[i].Chunk, err = r.id("chunk id"); err != nil {
				return nil, prefixed(err, "extent %d", i)
			}
		}
	}
	return xs, nil
}

func decodeExtensions(r *wireReader) ([]Extension, error) {
	n, err := r.count(minItemSize, "extension count")
	if err != nil || n == 0 {
		return nil, err
	}
	xs := make([]Extension, n)
	for i := range xs {
		if xs[i].Tag, err = r.uvarint("extension tag"); err != nil {
			return nil, prefixed(err, "extension %d", i)
		}
		v, err := r.lenBytes(MaxTreeObjectSize, "extension value")
		if err != nil {
			return nil, prefixed(err, "extension %d", i)
		}
		xs[i].Value = bytes.Clone(v)
	}
	return xs, nil
}
