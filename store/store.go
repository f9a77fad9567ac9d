package store

import (
	"context"
	"errors"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Error categories, checked with errors.Is (see also ErrInvalidDigest).
// Backends wrap them with context:
// fmt.Errorf("blob %s: %w", d, store.ErrNotFound).
var (
	ErrNotFound       = errors.New("not found")
	ErrDigestMismatch = errors.New("digest mismatch")
	ErrSizeMismatch   = errors.New("size mismatch")
	ErrTooLarge       = errors.New("blob too large")
	ErrLocked         = errors.New("store is in use")
)

// Info describes a stored blob.
type Info struct {
	Digest digest.Digest
	Size   int64
}

// Reader reads blobs. Every read is verified against the digest: a blob whose
// bytes do not match is reported with ErrDigestMismatch, never returned.
type Reader interface {
	// Stat returns the blob's size, or ErrNotFound.
	Stat(ctx context.Context, d digest.Digest) (Info, error)
	// ReadBlob returns the whole verified blob. A blob larger than maxSize
	// (when maxSize > 0) fails with ErrTooLarge before it is read.
	ReadBlob(ctx context.Context, d digest.Digest, maxSize int64) ([]byte, error)
	// Open streams a blob; the reader fails with ErrDigestMismatch at EOF if
	// the bytes do not match d.
	Open(ctx context.Context, d digest.Digest) (io.ReadCloser, error)
}

// RangeReader reads part of a blob without verification; the caller checks
// what it reads (a frame against its digest in the pack index). A range that
// ends past the blob fails with io.ErrUnexpectedEOF; a missing blob with
// ErrNotFound.
type RangeReader interface {
	ReadRange(ctx context.Context, d digest.Digest, offset, length int64) ([]byte, error)
}

// Writer stores blobs. PutBlob is idempotent: nil means the content is stored
// (also when it already was). Writes are atomic and verified: data whose
// digest is not d fails with ErrDigestMismatch and stores nothing.
type Writer interface {
	PutBlob(ctx context.Context, d digest.Digest, data []byte) error
	// WriteBlob stores a blob streamed from r of the given size (-1: unknown).
	// A stream of another length fails with ErrSizeMismatch. When the blob is
	// already stored, r may be left unread.
	WriteBlob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error
}

// Lister enumerates and deletes blobs (garbage collection). A backend that
// cannot (a registry) returns errors.ErrUnsupported.
type Lister interface {
	// ListBlobs calls fn for every blob, in digest order.
	ListBlobs(ctx context.Context, fn func(Info) error) error
	// DeleteBlob removes a blob; deleting a missing blob is not an error.
	DeleteBlob(ctx context.Context, d digest.Digest) error
}

// Ref is a named reference to a blob (an image index or manifest).
type Ref struct {
	Name       string // full normalized name, e.g. docker.io/library/hello:latest
	Descriptor ocispec.Descriptor
}

// Refs maps names to descriptors (index.json in an OCI layout).
type Refs interface {
	// ListRefs returns every ref sorted by name.
	ListRefs(ctx context.Context) ([]Ref, error)
	// GetRef returns the descriptor named name, or ErrNotFound.
	GetRef(ctx context.Context, name string) (ocispec.Descriptor, error)
	// SetRef points name at desc (replacing any previous target). The blob
	// must be stored already (else ErrNotFound) with desc.Size bytes (else
	// ErrSizeMismatch), so a ref never dangles.
	SetRef(ctx context.Context, name string, desc ocispec.Descriptor) error
	// DeleteRef removes name; ErrNotFound if it does not exist.
	DeleteRef(ctx context.Context, name string) error
}

// Leaser coordinates writers with garbage collection across processes. A
// lease is held while an operation may reference blobs that no ref reaches
// yet; Exclusive (gc) is granted only when no lease is held, and leases wait
// while it is held. Both are released by the returned func (idempotent) and,
// for file-backed stores, by the death of the process. A backend without
// garbage collection may return errors.ErrUnsupported.
type Leaser interface {
	Lease(ctx context.Context) (release func(), err error)
	// Exclusive waits for the store when wait is set, else fails with ErrLocked.
	Exclusive(ctx context.Context, wait bool) (release func(), err error)
}

// The roles below are what a local store adds to the portable ones: a
// registry has none of them. Consumers that need one declare it in their
// own interface (a store that lacks it does not compile there), so no
// behaviour hangs on a type assertion.

// HashedWriter stores bytes the caller has just hashed to d itself (a frame
// the Packer encoded and digested) without hashing them again. Bytes of any
// other origin go through Writer.PutBlob. Like PutBlob it is idempotent and
// atomic.
type HashedWriter interface {
	PutHashedBlob(ctx context.Context, d digest.Digest, data []byte) error
}

// Syncer is a store whose writes become durable in batches (SPEC.md §8,
// store/local): SetRef syncs first, so a ref never names a blob a
// power loss could take away.
type Syncer interface {
	// Sync makes every blob written or kept so far durable.
	Sync(ctx context.Context) error
	// Keep marks blob d, found stored, for the next Sync: a writer that
	// relies on a blob it did not write keeps it, since its writer may
	// have died before syncing. A unit blob's descriptor is kept with it.
	// A missing blob fails with ErrNotFound.
	Keep(ctx context.Context, d digest.Digest) error
}

// Units keeps unit descriptors (SPEC.md §8): small records, each named by
// the digest of the blob it describes. The store only keeps them; package
// store/index says what they hold. Writes are atomic and made durable by
// the next Sync.
type Units interface {
	// PutUnit stores (or replaces) the descriptor of blob d.
	PutUnit(ctx context.Context, d digest.Digest, desc []byte) error
	// ReadUnit returns the descriptor of blob d, or ErrNotFound.
	ReadUnit(ctx context.Context, d digest.Digest) ([]byte, error)
	// ListUnits returns every descriptor's digest, sorted.
	ListUnits(ctx context.Context) ([]digest.Digest, error)
	// DeleteUnit removes the descriptor of d (missing is not an error).
	DeleteUnit(ctx context.Context, d digest.Digest) error
}

// IngestCleaner is a store that keeps temporary files of writes in
// progress: CleanIngest removes those of writers that died and counts
// them. Temp files of live writers are left alone.
type IngestCleaner interface {
	CleanIngest(ctx context.Context) (int, error)
}

// RootLister is a store whose list of refs can hold entries that are not
// refs (store/local: index.json entries without a name, written by other
// tools, and entries whose name an earlier entry already carries). GC keeps
// what they reach and DU counts it as reachable, so the store stays a valid
// OCI layout for every tool that reads it.
type RootLister interface {
	// ListRoots returns every entry in the store's order; Name is "" for an
	// entry without a name and repeats for a name several entries carry.
	// Every ref ListRefs returns is among them.
	ListRoots(ctx context.Context) ([]Ref, error)
}

// IndexHome is a store that says where its index (package store/index)
// lives, so that every command opening an index of the store uses the same
// one rather than scanning the store again. store/local keeps index files
// (SPEC.md §8.2) in a directory of the store, shared by every process that
// opens it; a store held in one process's memory (store/memstore) returns
// "": its index is kept in memory too.
type IndexHome interface {
	// IndexDir returns the absolute directory of the store's index files,
	// outside its blobs and refs, or "" when the index is kept in memory.
	IndexDir() string
}

// LocalStore is every role of a store on this machine.
type LocalStore interface {
	Store
	HashedWriter
	Syncer
	Units
	IngestCleaner
	RootLister
	IndexHome
}

// Store is everything a backend provides.
type Store interface {
	Reader
	Writer
	Lister
	Refs
	Leaser
}
