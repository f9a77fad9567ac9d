package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/store"
)

// Unit descriptors live in a store.Units. A descriptor is named by the
// digest of the blob it describes and holds the pack index encoding of one
// frame: that blob's frame (see EncodeUnit). A unit is either a blob written
// for new chunks of virtual frames, or a canonical frame blob that holds
// chunks of virtual frames (pinned, so it stays found after the pack
// indexes naming it are gone).

// EncodeUnit returns the descriptor of a unit blob: the pack index encoding
// of its one frame.
func EncodeUnit(f format.Frame) ([]byte, error) {
	pi := format.PackIndex{Frames: []format.Frame{f}}
	return pi.Encode()
}

// DecodeUnit decodes and checks the descriptor named d: one valid frame
// whose digest is d.
func DecodeUnit(d digest.Digest, b []byte) (format.Frame, error) {
	pi, err := format.DecodePackIndex(b)
	if err != nil {
		return format.Frame{}, fmt.Errorf("unit %s: %w", d, err)
	}
	if len(pi.Frames) != 1 {
		return format.Frame{}, fmt.Errorf("unit %s: %d frames, want 1: %w", d, len(pi.Frames), format.ErrInvalid)
	}
	f := pi.Frames[0]
	if f.Digest.Digest() != d {
		return format.Frame{}, fmt.Errorf("unit %s: describes blob %s: %w", d, f.Digest, format.ErrInvalid)
	}
	return f, nil
}

// ReadUnits returns the frames of every valid unit descriptor, in digest
// order, and the digests of descriptors that do not decode.
func ReadUnits(ctx context.Context, us store.Units) (units []format.Frame, invalid []digest.Digest, err error) {
	ds, err := us.ListUnits(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range ds {
		b, err := us.ReadUnit(ctx, d)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, nil, err
		}
		f, err := DecodeUnit(d, b)
		if err != nil {
			invalid = append(invalid, d)
			continue
		}
		units = append(units, f)
	}
	return units, invalid, nil
}

// WriteUnit stores a unit: its blob, then its descriptor.
func WriteUnit(ctx context.Context, st store.Writer, us store.Units, f format.Frame, stored []byte) error {
	desc, err := EncodeUnit(f)
	if err != nil {
		return fmt.Errorf("unit %s: %w", f.Digest, err)
	}
	if err := st.PutBlob(ctx, f.Digest.Digest(), stored); err != nil {
		return fmt.Errorf("storing unit %s: %w", f.Digest, err)
	}
	if err := us.PutUnit(ctx, f.Digest.Digest(), desc); err != nil {
		return fmt.Errorf("storing unit %s: %w", f.Digest, err)
	}
	return nil
}

// unitBuffer holds new chunks of virtual frames until they are sealed into
// a unit (guarded by Session.mu). chunks has every chunk buffered or being
// sealed, so they stay readable until their unit is indexed; its slices
// point into the batches' data, which is never written once appended.
type unitBuffer struct {
	open     batch
	chunks   map[format.ChunkID][]byte
	inflight int // seals running
}

// batch is chunks to seal into one unit, and their bytes concatenated.
type batch struct {
	chunks []format.ChunkRef
	data   []byte
}

// add appends chunk c, its bytes b, to the batch and points buffered[c.ID] at
// them. The array starts at 1 MiB (a small write does not pay a whole unit)
// and doubles up to limit. When it grows, the chunks already in the batch
// are pointed into the new array: left pointing into the outgrown ones,
// they kept every one reachable until the unit was sealed (a large create
// held about four times its unit buffers).
func (o *batch) add(c format.ChunkRef, b []byte, limit int, buffered map[format.ChunkID][]byte) {
	if need := len(o.data) + len(b); need > cap(o.data) {
		n := min(max(2*cap(o.data), 1<<20), limit)
		grown := make([]byte, len(o.data), max(n, need))
		copy(grown, o.data)
		o.data = grown
		o.repoint(buffered)
	}
	start := len(o.data)
	o.data = append(o.data, b...)
	o.chunks = append(o.chunks, c)
	buffered[c.ID] = o.data[start:len(o.data):len(o.data)]
}

// prepend puts batch b in front of o's chunks.
func (o *batch) prepend(b batch, buffered map[format.ChunkID][]byte) {
	o.chunks = append(b.chunks[:len(b.chunks):len(b.chunks)], o.chunks...)
	o.data = append(b.data[:len(b.data):len(b.data)], o.data...)
	o.repoint(buffered)
}

// repoint points buffered at the batch's own array for each of its chunks.
func (o *batch) repoint(buffered map[format.ChunkID][]byte) {
	off := 0
	for _, c := range o.chunks {
		n := int(c.Size)
		buffered[c.ID] = o.data[off : off+n : off+n]
		off += n
	}
}

// rawBufs hold the arrays putVirtual decodes frames into.
var rawBufs = sync.Pool{New: func() any { return new([]byte) }}

// putVirtual keeps f as a virtual frame of the session and buffers its new
// chunks. An untrusted frame that does not re-encode to stored is left to
// the caller (ok false).
func (s *Session) putVirtual(ctx context.Context, key format.ChunkID, f format.Frame, stored []byte, trusted, direct bool) (ok bool, err error) {
	// A trusted frame's chunks are the bytes its IDs were computed from.
	// Its raw bytes are copied into the buffer: decoded into a reused
	// array, they are not a frame's worth of garbage each.
	buf := rawBufs.Get().(*[]byte)
	defer rawBufs.Put(buf)
	raw, err := pack.DecodeFrameBuf(&f, stored, !trusted, *buf)
	if err != nil {
		return false, fmt.Errorf("storing frame %s: %w", f.Digest, err)
	}
	if f.Encoding == format.EncodingZstd && cap(raw) > cap(*buf) {
		*buf = raw[:0] // raw is stored itself when the frame is raw
	}
	if !trusted {
		if enc, re := pack.EncodeFrame(raw); enc != f.Encoding || !bytes.Equal(re, stored) {
			return false, nil
		}
	}
	// The frame will rely on the blobs holding its known chunks.
	if held, err := s.x.keepBlobs(ctx, s.x.holders(s.unbuffered(f.Chunks))); err != nil || !held {
		return false, err
	}
	s.mu.Lock()
	if _, ok := s.frames[key]; ok {
		s.mu.Unlock()
		return true, nil
	}
	var full []batch
	var off uint64
	start, skipped := len(s.ub.open.data), false
	for _, c := range f.Chunks {
		b := raw[off : off+uint64(c.Size)]
		off += uint64(c.Size)
		// A seal indexes its unit in x before it leaves the buffer, so
		// under s.mu a chunk is seen in one or the other.
		if _, ok := s.ub.chunks[c.ID]; ok {
			s.relied[c.ID] = struct{}{}
			skipped = true
			continue
		}
		if s.x.HasChunk(c.ID) {
			skipped = true
			continue
		}
		o := &s.ub.open
		if len(o.data) > 0 && len(o.data)+len(b) > format.MaxFrameRawSize {
			full = append(full, s.takeLocked())
		}
		o.add(c, b, s.x.cfg.unitSize+format.ChunkMaxSize, s.ub.chunks)
		if len(o.data) >= s.x.cfg.unitSize {
			full = append(full, s.takeLocked())
		}
	}
	s.frames[key] = f
	if direct && !skipped && s.direct != nil {
		d := directFrame{f: f, stored: stored, start: start}
		if f.Encoding == format.EncodingRaw {
			d.stored = nil // its bytes are the buffer's
		}
		s.direct[key] = d
	}
	s.mu.Unlock()
	s.virtual.Add(1)

	var first error
	for i, b := range full {
		if err := s.startSeal(ctx, b); err != nil {
			for _, b := range full[i:] {
				s.giveBack(b)
			}
			first = err
			break
		}
	}
	if err := s.pin(ctx, f.Chunks); err != nil && first == nil {
		first = err
	}
	return true, first
}

// takeLocked takes the open batch and counts its seal as running.
func (s *Session) takeLocked() batch {
	b := s.ub.open
	s.ub.open = batch{}
	s.ub.inflight++
	s.direct = nil // its frames' chunks go into units now
	return b
}

// maxSeals bounds the units a session compresses at once; PutFrame waits
// for a slot (so buffered chunks stay bounded) but not for the seal itself,
// which would stall the Packer's in-order pipeline behind one worker.
const maxSeals = 2

// startSeal seals b in the background once a slot is free. A seal that
// fails gives its chunks back to the buffer: Flush retries them. The seal
// runs on the session's context: WithSession waits for it.
func (s *Session) startSeal(ctx context.Context, b batch) error {
	select {
	case s.seals <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	go func() {
		defer func() { <-s.seals }()
		s.seal(s.ctx, b)
	}()
	return nil
}

// giveBack returns a taken batch that was not sealed to the buffer.
func (s *Session) giveBack(b batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.giveBackLocked(b)
}

func (s *Session) giveBackLocked(b batch) {
	s.ub.open.prepend(b, s.ub.chunks)
	s.ub.inflight--
	s.idle.Broadcast()
}

// seal compresses a batch into a unit, stores it and indexes it. On failure
// the chunks go back to the buffer (a later Flush retries them).
func (s *Session) seal(ctx context.Context, b batch) error {
	u, stored := MakeUnit(b.chunks, b.data)
	err := WriteUnit(ctx, s.x.st, s.x.units, u, stored)
	if err == nil {
		s.written.Add(int64(len(stored)))
		s.x.addUnit(u)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.giveBackLocked(b)
		return err
	}
	s.ub.inflight--
	s.idle.Broadcast()
	for _, c := range b.chunks {
		delete(s.ub.chunks, c.ID)
	}
	return nil
}

// Flush stores every buffered chunk in units, waits for the session's
// seals, and publishes its virtual frames to the Index. Writers call it
// before naming virtual frames in a manifest.
func (s *Session) Flush(ctx context.Context) error {
	s.mu.Lock()
	if err := s.storeDirectLocked(ctx); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("flushing frames: %w", err)
	}
	for {
		switch {
		case len(s.ub.open.chunks) > 0:
			b := s.takeLocked()
			s.mu.Unlock()
			if err := s.seal(ctx, b); err != nil {
				return fmt.Errorf("flushing units: %w", err)
			}
			s.mu.Lock()
		case s.ub.inflight > 0:
			s.idle.Wait()
		default:
			frames := s.frames
			s.frames = make(map[format.ChunkID]format.Frame)
			s.mu.Unlock()
			s.x.addVirtual(frames)
			return nil
		}
	}
}

// wait returns once no seal of the session runs.
func (s *Session) wait() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.ub.inflight > 0 {
		s.idle.Wait()
	}
}

// pin makes every frame blob holding one of chunks a unit too (writes its
// descriptor), unless the chunk is held by a unit or buffered. A virtual frame
// thus relies on units only, which the store finds without any pack index:
// gc keeps them after the images whose frames they are are deleted.
func (s *Session) pin(ctx context.Context, chunks []format.ChunkRef) error {
	x := s.x
	for _, f := range x.unpinned(s.unbuffered(chunks)) {
		desc, err := EncodeUnit(f)
		if err == nil {
			err = x.units.PutUnit(ctx, f.Digest.Digest(), desc)
		}
		if err != nil {
			return fmt.Errorf("pinning frame %s: %w", f.Digest, err)
		}
		x.addUnit(f)
	}
	return nil
}

// unpinned returns the frame blobs (not units) holding chunks, each once.
func (x *Index) unpinned(chunks []format.ChunkRef) []format.Frame {
	x.mu.Lock()
	defer x.mu.Unlock()
	var todo []format.Frame
	seen := map[int32]bool{}
	for _, c := range chunks {
		loc, ok := x.locateLocked(c.ID)
		if !ok || x.blobs[loc.blob].unit || seen[loc.blob] {
			continue
		}
		seen[loc.blob] = true
		todo = append(todo, x.blobs[loc.blob].f)
	}
	return todo
}
