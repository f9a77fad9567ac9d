package writer

import (
	"io"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store/index"
)

// Content supplies a regular file's logical bytes. Open may return an
// *os.File, which lets the writer skip holes without reading them.
type Content interface {
	Open() (io.ReadCloser, error)
}

// Node is one filesystem entry before it is written. Entry carries the name
// and metadata; for regular files Entry.Size must be set, and Entry.Extents
// may be set when they are already known (then Content is used only to fetch
// bytes of chunks the store lacks, or may be nil when the store has them).
type Node struct {
	format.Entry
	Children []*Node // TypeDir; any order, the writer sorts them
	Content  Content // TypeReg
	// Candidate, for a regular file without Extents, is what its extents
	// probably are (a cache's last extents for its path and size): the
	// writer checks them against the file's bytes, chunk by chunk with
	// SHA-256, and uses them when they match, else chunks the file.
	Candidate []format.Extent
	// Inode groups hardlinks: nodes with the same non-zero Inode are one file.
	// The writer makes the first of a group in canonical order the regular
	// file and the others TypeHardlink entries pointing at it.
	Inode uint64
}

// Progress is reported while writing (from one goroutine, in order).
type Progress struct {
	Phase        string // "walk", "data", "trees", "commit"
	Entries      int64
	BytesRead    int64 // logical bytes chunked so far
	BytesTotal   int64 // logical bytes to chunk (when known)
	FramesNew    int64
	FramesReused int64
	StoredNew    int64 // stored bytes of new frames (canonical, whether kept virtual or not)
}

// Options configure Write.
type Options struct {
	// Config is the image config; Architecture/OS/Variant give the platform.
	// The writer sets RootFS and, with SourceDateEpoch, clamps Created.
	Config ocispec.Image
	// DockerConfig are Docker's config fields that ocispec.Image lacks
	// (Healthcheck, OnBuild, Shell), written into the config's "config".
	DockerConfig dockerspec.DockerOCIImageConfigExt
	// Annotations are added to the manifest (besides the format's own).
	Annotations map[string]string
	// SourceDateEpoch clamps every mtime later than it (SPEC.md §4.3).
	SourceDateEpoch *time.Time
	Progress        func(Progress)
	// Workers read and chunk files in parallel (default GOMAXPROCS); the
	// data Packer compresses with one more, the tree Packer with as many.
	Workers int

	// FrameIndex is the store's frame index (frames to reuse, chunks to
	// fetch). When nil, Write scans the store to build one; a process
	// writing several images passes one to all (and Refreshes it). Write
	// stores through its own Session of it.
	FrameIndex *index.Index
	// StatCache, when set, lets Write skip reading files whose metadata did
	// not change since the cache was saved; Write records what it read.
	StatCache *StatCache
	// Extents, when set, is called once the data is written with the
	// extents of every regular file, in canonical order (the caller's
	// Node; of a hardlink group only the member that holds the data).
	Extents func(n *Node, ext []format.Extent)
	// MaxInFlight bounds the bytes read ahead of the Packer (default 8 MiB
	// per worker, at least 16 MiB). The file the Packer waits on may queue
	// 4 MiB beyond it.
	MaxInFlight int64
}

// Stats describe one written image.
type Stats struct {
	Entries      int64 `json:"entries"`
	Files        int64 `json:"files"`
	LogicalBytes int64 `json:"logical_bytes"` // sum of regular file sizes
	Chunks       int64 `json:"chunks"`        // distinct data chunks
	Frames       int64 `json:"frames"`
	FramesNew    int64 `json:"frames_new"`
	StoredBytes  int64 `json:"stored_bytes"` // stored size of all packs
	// StoredNew counts the bytes of blobs written by this write: frames,
	// and units holding the new chunks of virtual frames (SPEC.md §8); its
	// own also when other writes share the Index at once (each write is one
	// index.Session).
	StoredNew     int64 `json:"stored_new_bytes"`
	FramesVirtual int64 `json:"frames_virtual"` // new frames kept virtual
	Packs         int64 `json:"packs"`
	FilesCached   int64 `json:"files_cached"`   // files not read thanks to the files cache
	FilesVerified int64 `json:"files_verified"` // files whose Candidate matched their bytes
	BytesVerified int64 `json:"bytes_verified"` // their logical bytes
}

// Result of writing one image manifest.
type Result struct {
	Manifest ocispec.Descriptor // with Platform set
	Root     format.ChunkID     // root wrapper tree
	Stats    Stats
}

// Store is what Write needs: what the store's index needs (units, and
// durability of the blobs a write relies on).
type Store interface {
	index.Store
}

// DirOptions configure FromDir.
type DirOptions struct {
	// Warn receives non-fatal problems (sockets skipped, unreadable xattrs
	// when not root, ...).
	Warn func(path string, err error)
}
