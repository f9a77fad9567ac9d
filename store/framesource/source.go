package framesource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
)

// Store is what a Source needs to find the chunks of virtual frames: blobs,
// refs, unit descriptors, and the store's index files (store.IndexHome),
// which its index reads instead of scanning the store.
type Store interface {
	store.Reader
	store.Refs
	store.Units
	store.IndexHome
}

// readCacheBytes bounds the decoded units and frames a Source keeps: units
// are 8 MiB, and readers working in parallel on neighbouring files read a
// few at once.
const readCacheBytes = 64 << 20

// Source is a reader.FrameSource (and reader.ChunkSource) over a local
// store. Frames whose blob is present are read as blobs; for the others it
// opens, on first need, the store's index (from its index files: see
// store.IndexHome) and reads their chunks from the blobs holding them. It
// is safe for concurrent use.
type Source struct {
	st   Store
	opts []index.Option // of the index built on first need

	once sync.Once
	idx  *index.Index
	err  error
}

var (
	_ reader.FrameSource = (*Source)(nil)
	_ reader.ChunkSource = (*Source)(nil)
)

// New returns a Source over st. idx may be an index of st the caller has
// already (a writer's); nil builds one when first needed, with opts
// (index.InMemory: by a scan that trusts no index file).
func New(st Store, idx *index.Index, opts ...index.Option) *Source {
	s := &Source{st: st, idx: idx, opts: opts}
	if idx != nil {
		s.once.Do(func() {})
	}
	return s
}

// Index returns the store's index, building it on first use.
func (s *Source) Index(ctx context.Context) (*index.Index, error) {
	s.once.Do(func() {
		opts := append([]index.Option{index.WithCacheBytes(readCacheBytes)}, s.opts...)
		s.idx, s.err = index.New(ctx, readOnly{s.st}, opts...)
		if s.err != nil {
			s.err = fmt.Errorf("indexing store: %w", s.err)
		}
	})
	return s.idx, s.err
}

// Frame implements reader.FrameSource: the frame's canonical stored bytes,
// regenerated from its chunks when it is virtual.
func (s *Source) Frame(ctx context.Context, p *reader.Pack, i int) ([]byte, error) {
	return s.StoredFrame(ctx, &p.Index.Frames[i])
}

// StoredFrame returns frame f's canonical stored bytes: its blob, or the
// frame regenerated from its chunks and checked against f.Digest. It fits
// pack.WritePack.
func (s *Source) StoredFrame(ctx context.Context, f *format.Frame) ([]byte, error) {
	b, err := s.st.ReadBlob(ctx, f.Digest.Digest(), int64(f.StoredSize))
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return b, err
	}
	idx, err := s.Index(ctx)
	if err != nil {
		return nil, err
	}
	if !idx.Locatable(f) {
		return nil, fmt.Errorf("frame %s: neither stored nor held as chunks: %w", f.Digest, store.ErrNotFound)
	}
	return idx.StoredFrame(ctx, f)
}

// Virtual implements reader.ChunkSource: a frame is virtual when its blob
// is missing.
func (s *Source) Virtual(ctx context.Context, p *reader.Pack, i int) (bool, error) {
	f := &p.Index.Frames[i]
	_, err := s.st.Stat(ctx, f.Digest.Digest())
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	idx, err := s.Index(ctx)
	if err != nil {
		return false, err
	}
	if !idx.Locatable(f) {
		return false, fmt.Errorf("frame %s: neither stored nor held as chunks: %w", f.Digest, store.ErrNotFound)
	}
	return true, nil
}

// ReadChunk implements reader.ChunkSource: the chunk from the blob (unit or
// frame) holding it, not hashed (the ChunkReader verifies it).
func (s *Source) ReadChunk(ctx context.Context, id format.ChunkID) ([]byte, error) {
	idx, err := s.Index(ctx)
	if err != nil {
		return nil, err
	}
	return idx.ReadChunkUnchecked(ctx, id)
}

// Available reports whether frame f can be read: its blob is present with
// its size, or every one of its chunks is held by a blob the index knows.
func (s *Source) Available(ctx context.Context, f *format.Frame) (bool, error) {
	info, err := s.st.Stat(ctx, f.Digest.Digest())
	if err == nil {
		return info.Size == int64(f.StoredSize), nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	idx, err := s.Index(ctx)
	if err != nil {
		return false, err
	}
	return idx.Locatable(f), nil
}

// readOnly lets an Index read a store it must not write to.
type readOnly struct{ Store }

var errReadOnly = errors.New("framesource: the store is read only here")

func (readOnly) PutBlob(context.Context, digest.Digest, []byte) error { return errReadOnly }
func (readOnly) PutHashedBlob(context.Context, digest.Digest, []byte) error {
	return errReadOnly
}
func (readOnly) PutUnit(context.Context, digest.Digest, []byte) error { return errReadOnly }
func (readOnly) DeleteUnit(context.Context, digest.Digest) error      { return errReadOnly }

// Sync and Keep: a reader relies on nothing a ref does not name already.
func (readOnly) Sync(context.Context) error                { return nil }
func (readOnly) Keep(context.Context, digest.Digest) error { return nil }
func (readOnly) WriteBlob(context.Context, digest.Digest, int64, io.Reader) error {
	return errReadOnly
}
