package format

// EntryType is the kind of a tree entry; its numeric value is the encoded byte.
type EntryType uint8

// Entry types (SPEC.md §4.2). Sockets are not representable (as in tar).
const (
	TypeDir      EntryType = 1
	TypeReg      EntryType = 2
	TypeSymlink  EntryType = 3
	TypeHardlink EntryType = 4
	TypeChar     EntryType = 5
	TypeBlock    EntryType = 6
	TypeFifo     EntryType = 7
)

// ModeMask keeps the permission bits plus setuid, setgid and sticky.
const ModeMask = 0o7777

// Xattr is one extended attribute; Value may be empty and need not be UTF-8.
type Xattr struct {
	Name  string
	Value []byte
}

// Extent is a piece of a regular file: Length bytes of chunk Chunk, or, when
// Zero is set, Length zero bytes (a hole or a long zero run; Chunk is unset).
type Extent struct {
	Zero   bool
	Length uint64
	Chunk  ChunkID
}

// ExtentsSize returns the bytes ext covers (the file size they describe).
func ExtentsSize(ext []Extent) uint64 {
	var n uint64
	for _, x := range ext {
		n += x.Length
	}
	return n
}

// Extension is a forward-compatibility field (SPEC.md §4.3). Tags with the low
// bit set are critical: a reader that does not know them must reject the tree.
type Extension struct {
	Tag   uint64
	Value []byte
}

// Entry is one directory entry with its canonical metadata.
type Entry struct {
	Name string // one path component, raw bytes
	Type EntryType
	Mode uint32 // ModeMask bits only
	UID  uint32
	GID  uint32
	// Mtime is nanoseconds since the Unix epoch (may be negative).
	MtimeSec  int64
	MtimeNsec uint32
	Xattrs    []Xattr // sorted by Name bytes, names unique

	Size    uint64   // TypeReg: logical size, the sum of Extents lengths
	Extents []Extent // TypeReg

	Tree ChunkID // TypeDir: digest of the child tree object

	// Target is the symlink target (TypeSymlink) or, for TypeHardlink, the
	// slash-separated path from the image root (no leading slash) of the
	// regular file this entry is a link to, which precedes it in canonical
	// (depth-first, sorted) order.
	Target string

	DevMajor, DevMinor uint32 // TypeChar, TypeBlock

	Extensions []Extension // sorted by Tag, unique
}

// Tree is one directory's object: its entries sorted by Name bytes.
type Tree struct {
	Entries []Entry
}
