package index

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store"
)

// Session is one write to the store through an Index: it implements
// pack.FrameStore, so a Packer reuses the frames the store holds and puts
// new ones through it. It is safe for concurrent use within its write.
//
// PutFrame keeps a new frame virtual when the store already holds at least
// VirtualMin of its raw bytes, or (WithWarmUnits, the default) when the
// store held any chunk at the last Refresh: only its new chunks are kept,
// buffered across frames and compressed together (by at most maxSeals
// goroutines of the session) into units of about UnitSize raw bytes. Flush
// writes what is buffered; a writer calls it before it names the frames in
// a manifest. A session that fills no unit stores its frames of new chunks
// as blobs at Flush instead (see storeDirectLocked). Without units (WithUnits(nil)) a frame always gets its
// blob.
//
// What a session stores is added to its Index as soon as it is stored;
// its virtual frames once Flush has stored their chunks. Its counters
// (Written, VirtualFrames) are its own, whatever other sessions do.
type Session struct {
	x     *Index
	ctx   context.Context // the write's: seals run on it
	seals chan struct{}   // slots of seals running in the background

	mu     sync.Mutex
	ub     unitBuffer
	idle   *sync.Cond                      // on mu: signalled when a seal ends
	frames map[format.ChunkID]format.Frame // virtual frames not yet published to x
	direct map[format.ChunkID]directFrame  // see storeDirectLocked; nil once a unit is sealed
	relied map[format.ChunkID]struct{}     // buffered chunks something relied on
	done   []digest.Digest                 // see MarkDone

	written atomic.Int64
	virtual atomic.Int64
}

// WithSession runs fn with a new Session of x, then flushes it (when fn
// succeeded) and waits for its seals: no goroutine of the session outlives
// the call, so neither outlives the caller's lease or lock. When fn or the
// flush fails, running seals are cancelled and chunks still buffered are
// dropped with the session; units already stored stay (a later gc collects
// those no image needs).
func (x *Index) WithSession(ctx context.Context, fn func(context.Context, *Session) error) error {
	s := &Session{
		x:      x,
		seals:  make(chan struct{}, maxSeals),
		ub:     unitBuffer{chunks: make(map[format.ChunkID][]byte)},
		frames: make(map[format.ChunkID]format.Frame),
		direct: make(map[format.ChunkID]directFrame),
		relied: make(map[format.ChunkID]struct{}),
	}
	s.idle = sync.NewCond(&s.mu)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = sctx
	err := fn(sctx, s)
	if err == nil {
		err = s.Flush(sctx)
	}
	cancel() // a failed write's seals stop storing what nothing will name
	s.wait()
	if err == nil {
		x.scanMu.Lock()
		for _, d := range s.done {
			x.markDone(d)
		}
		x.scanMu.Unlock()
	}
	// What was stored is indexed, whether or not the write succeeded.
	if serr := x.save(ctx); serr != nil && err == nil {
		err = fmt.Errorf("saving the index: %w", serr)
	}
	return err
}

// MarkDone records that blob d (an image index, a manifest or a pack index
// the write stored) names only frames that went through the session, so
// that when the write succeeds the index file it saves says d is done
// (SPEC.md §8.2) along with those frames, and no later scan reads d again.
// A write that fails, or a crash before the file is written, leaves d to
// be scanned.
func (s *Session) MarkDone(ds ...digest.Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = append(s.done, ds...)
}

// Index returns the index the session writes to.
func (s *Session) Index() *Index { return s.x }

// Written returns the bytes of blobs this session stored (frames and
// units).
func (s *Session) Written() int64 { return s.written.Load() }

// VirtualFrames returns the number of frames this session kept virtual.
func (s *Session) VirtualFrames() int64 { return s.virtual.Load() }

// buffered reports whether chunk id waits in the session's unit buffer.
func (s *Session) buffered(id format.ChunkID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ub.chunks[id]
	if ok {
		s.relied[id] = struct{}{}
	}
	return ok
}

// unbuffered returns the chunks not in the session's unit buffer.
func (s *Session) unbuffered(chunks []format.ChunkRef) []format.ChunkRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	return notIn(chunks, s.ub.chunks)
}

// HasChunk reports whether the store or the session's buffer holds chunk id.
func (s *Session) HasChunk(id format.ChunkID) bool {
	return s.x.HasChunk(id) || s.buffered(id)
}

// Locatable reports whether every chunk of f is held (by the store or the
// session's buffer).
func (s *Session) Locatable(f *format.Frame) bool {
	return len(s.x.unheld(s.unbuffered(f.Chunks))) == 0
}

// ReadChunk is Index.ReadChunk that also reads the session's buffer.
func (s *Session) ReadChunk(ctx context.Context, id format.ChunkID) ([]byte, error) {
	s.mu.Lock()
	b, ok := s.ub.chunks[id]
	s.mu.Unlock()
	if ok {
		return append([]byte(nil), b...), nil
	}
	return s.x.ReadChunk(ctx, id)
}

// StoredFrame is Index.StoredFrame that also reads the session's buffer.
func (s *Session) StoredFrame(ctx context.Context, f *format.Frame) ([]byte, error) {
	return storedFrame(ctx, s.x.st, f, s.ReadChunk)
}

// LookupFrame returns the frame stored under key, if any: a frame whose
// blob is present, or a virtual one all of whose chunks the store (or the
// session's buffer) holds. A frame is offered only after a Stat shows its
// blob (for a virtual frame, each blob holding its chunks) still stored;
// otherwise the missing blobs are dropped from the index (see Index) and
// the frame is reported not found, so the caller makes and puts it again.
// Reusing a virtual frame pins the frames holding its chunks (see pin).
func (s *Session) LookupFrame(ctx context.Context, key format.ChunkID) (format.Frame, bool, error) {
	x := s.x
	s.mu.Lock()
	own, isOwn := s.frames[key]
	s.mu.Unlock()
	if isOwn {
		return own, true, nil
	}
	x.mu.Lock()
	r, kind, found := x.frameLocked(key)
	x.mu.Unlock()
	ok := found && kind != kindPending
	isPending := kind == kindPending
	pf := r.f
	switch {
	case ok && r.blob >= 0:
		stored, err := x.stored(ctx, r.f)
		if err != nil {
			return format.Frame{}, false, fmt.Errorf("frame %s: %w", r.f.Digest, err)
		}
		if !stored {
			x.dropBlob(r.blob)
			x.dropFrame(key, r.f)
			return format.Frame{}, false, nil
		}
		if kept, err := x.keepBlobs(ctx, []int32{r.blob}); err != nil || !kept {
			return format.Frame{}, false, err
		}
		return r.f, true, nil
	case ok && x.units != nil:
		// virtual
	case !ok && isPending && x.units != nil && s.Locatable(&pf):
		r.f = pf
	default:
		return format.Frame{}, false, nil
	}
	held, err := x.checkHolders(ctx, s.unbuffered(r.f.Chunks))
	if err != nil || !held {
		if !held && ok {
			x.dropVirtual(key)
		}
		return format.Frame{}, false, err
	}
	s.mu.Lock()
	s.noteRelied(r.f.Chunks) // they stay in a unit
	if !ok {
		// Its chunks may be in this session's buffer only: published
		// with the session's other virtual frames, at Flush.
		s.frames[key] = pf
	}
	s.mu.Unlock()
	if err := s.pin(ctx, r.f.Chunks); err != nil {
		return format.Frame{}, false, err
	}
	return r.f, true, nil
}

// PutFrame stores a new frame (idempotent) and indexes it under key: as the
// blob f.Digest, or virtual, its new chunks buffered for a unit (see
// Session). It trusts that stored was made by pack.EncodeFrame from the
// frame's chunks (the Packer's frames), so that a virtual frame regenerates
// to it; frames from elsewhere go through PutForeignFrame.
func (s *Session) PutFrame(ctx context.Context, key format.ChunkID, f format.Frame, stored []byte) error {
	return s.putFrame(ctx, key, f, stored, true)
}

// PutForeignFrame is PutFrame for a frame whose stored bytes come from
// elsewhere (a registry): it is kept virtual only if its raw bytes
// re-encode to exactly stored with the pinned encoder.
func (s *Session) PutForeignFrame(ctx context.Context, key format.ChunkID, f format.Frame, stored []byte) error {
	return s.putFrame(ctx, key, f, stored, false)
}

func (s *Session) putFrame(ctx context.Context, key format.ChunkID, f format.Frame, stored []byte, trusted bool) error {
	x := s.x
	if uint64(len(stored)) != f.StoredSize {
		return fmt.Errorf("frame %s: stored %d bytes, frame says %d: %w",
			f.Digest, len(stored), f.StoredSize, store.ErrSizeMismatch)
	}
	if x.units != nil {
		known, raw := s.knownBytes(f.Chunks)
		warm := trusted && x.cfg.warm && x.warm.Load()
		if (known > 0 && float64(known) >= x.cfg.virtualMin*float64(raw)) || warm {
			// A frame of new chunks only may yet get its blob (see
			// storeDirectLocked).
			ok, err := s.putVirtual(ctx, key, f, stored, trusted, warm && known == 0)
			if ok || err != nil {
				return err
			}
		}
	}
	put := x.st.PutBlob
	if trusted {
		put = x.st.PutHashedBlob // the Packer digested stored itself
	}
	if err := put(ctx, f.Digest.Digest(), stored); err != nil {
		return fmt.Errorf("storing frame %s: %w", f.Digest, err)
	}
	s.written.Add(int64(len(stored)))
	x.addStored(key, f, true)
	return nil
}

// knownBytes returns the raw bytes of chunks already held (by the store or
// the session's buffer), and all raw bytes.
func (s *Session) knownBytes(chunks []format.ChunkRef) (known, raw uint64) {
	for _, c := range chunks {
		raw += uint64(c.Size)
	}
	known = raw
	for _, c := range s.x.unheld(s.unbuffered(chunks)) {
		known -= uint64(c.Size)
	}
	return known, raw
}
