package format

import "github.com/restic/chunker"

// Chunking parameters (SPEC.md §3). They are part of the format: changing any of
// them changes chunk boundaries and therefore every digest.
const (
	// ChunkerPolynomial is the fixed irreducible polynomial of degree 53 used
	// by the Rabin chunker on every machine.
	ChunkerPolynomial = chunker.Pol(0x3DA3358B4DC173)
	// ChunkMinSize and ChunkMaxSize bound every data chunk.
	ChunkMinSize = 16 << 10
	ChunkMaxSize = 256 << 10
	// ChunkAverageBits is passed to chunker.SetAverageBits (64 KiB average).
	ChunkAverageBits = 16

	// ZeroBlockSize is the granularity of zero extents: a file's bytes are
	// viewed as blocks of this size at offsets that are multiples of it.
	ZeroBlockSize = 4 << 10
	// ZeroRunMin is the shortest run of all-zero blocks that becomes a zero
	// extent instead of data (holes and long zero padding).
	ZeroRunMin = 32 << 10
)

// Frame and pack parameters (SPEC.md §5).
const (
	// FrameAverage is the expected uncompressed size of a frame; a chunk of
	// size s closes its frame with probability min(1, s/FrameAverage).
	FrameAverage = 256 << 10
	// FrameMax bounds the uncompressed size of a frame of several chunks; a
	// single chunk larger than it (a big tree object) forms a frame alone.
	FrameMax = 1 << 20
	// PackMin, PackAverageExtra and PackMax shape packs over the frame sequence.
	PackMin          = 4 << 20
	PackAverageExtra = 4 << 20
	PackMax          = 32 << 20
)

// Decoder limits: anything larger is rejected as hostile (SPEC.md §9).
const (
	// MaxTreeObjectSize bounds one encoded tree object.
	MaxTreeObjectSize = 16 << 20
	// MaxFrameRawSize bounds the decompressed size of one frame.
	MaxFrameRawSize = MaxTreeObjectSize
	// MaxPackIndexSize bounds one encoded pack index.
	MaxPackIndexSize = 64 << 20
	// MaxNameLen is the longest entry name (Linux NAME_MAX).
	MaxNameLen = 255
	// MaxLinkLen bounds symlink and hardlink targets (Linux PATH_MAX - 1).
	MaxLinkLen = 4095
	// MaxXattrs, MaxXattrNameLen, MaxXattrValueLen bound extended attributes.
	MaxXattrs        = 1024
	MaxXattrNameLen  = 255
	MaxXattrValueLen = 64 << 10
	// MaxTreeDepth, MaxImageEntries and MaxImageBytes are the walk limits
	// of SPEC.md §7 (directory depth; entries and logical file bytes of one
	// image, shared subtrees counted each time they appear): readers
	// enforce them by default and writers refuse to exceed them.
	MaxTreeDepth    = 1024
	MaxImageEntries = 16 << 20
	MaxImageBytes   = 1 << 40
	// NoOwner is (uid_t)-1 and (gid_t)-1, which chown(2) reads as "leave
	// unchanged": it is not a valid uid or gid of an entry (SPEC.md §4.2).
	NoOwner = 1<<32 - 1
)
