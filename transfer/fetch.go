package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
)

// fetcher gets the frames of the pulled images' packs into the store.
type fetcher struct {
	pl        *puller
	idx       *index.Session
	treesOnly bool // skip the data packs (their frames are fetched on demand)
	dataOnly  bool // skip the tree packs (fetched and validated already)

	packs   []*reader.Pack
	rebuild []frameRef
	fetch   map[digest.Digest][]int // pack -> frames to fetch, ascending
	byPack  map[digest.Digest]*reader.Pack

	warnOnce sync.Once
}

// frameRef is frame i of pack p.
type frameRef struct {
	p *reader.Pack
	i int
}

func (f *fetcher) frame(r frameRef) *format.Frame { return &r.p.Index.Frames[r.i] }

func (f *fetcher) run(ctx context.Context) error {
	f.collectPacks()
	if err := f.plan(ctx); err != nil {
		return err
	}
	if err := f.rebuildAll(ctx); err != nil {
		return err
	}
	// Frames kept virtual (SPEC.md §8) have their new chunks buffered for
	// units: the session's end stores them before any ref names the images.
	return f.fetchAll(ctx)
}

// collectPacks lists every pack of the images once.
func (f *fetcher) collectPacks() {
	f.byPack = map[digest.Digest]*reader.Pack{}
	for _, img := range f.pl.images {
		lists := [][]reader.Pack{img.TreePacks, img.DataPacks}
		switch {
		case f.treesOnly:
			lists = lists[:1]
		case f.dataOnly:
			lists = lists[1:]
		}
		for _, list := range lists {
			for i := range list {
				p := &list[i]
				if f.byPack[p.Descriptor.Digest] == nil {
					f.byPack[p.Descriptor.Digest] = p
					f.packs = append(f.packs, p)
				}
			}
		}
	}
}

// plan sorts every frame into present, rebuildable or to fetch.
func (f *fetcher) plan(ctx context.Context) error {
	f.fetch = map[digest.Digest][]int{}
	seen := map[format.ChunkID]bool{}
	for _, p := range f.packs {
		for i := range p.Index.Frames {
			fr := &p.Index.Frames[i]
			if seen[fr.Digest] {
				continue // the same frame in two packs: stored once
			}
			seen[fr.Digest] = true
			info, err := f.pl.st.Stat(ctx, fr.Digest.Digest())
			switch {
			case err == nil && info.Size == int64(fr.StoredSize):
				if err := f.pl.st.Keep(ctx, fr.Digest.Digest()); err != nil { // the ref will name it
					return err
				}
				f.idx.NoteStored(pack.FrameKey(fr.Chunks), *fr)
				f.pl.res.FramesPresent++
				continue
			case err != nil && !errors.Is(err, store.ErrNotFound):
				return err
			}
			// A virtual frame of the local store (SPEC.md §8) is present too
			// (LookupFrame pins the blobs holding its chunks).
			if f.idx.Locatable(fr) {
				_, ok, err := f.idx.LookupFrame(ctx, pack.FrameKey(fr.Chunks))
				if err != nil {
					return err
				}
				if ok {
					f.pl.res.FramesPresent++
					continue
				}
			}
			if f.haveChunks(fr) {
				f.rebuild = append(f.rebuild, frameRef{p, i})
			} else {
				f.fetch[p.Descriptor.Digest] = append(f.fetch[p.Descriptor.Digest], i)
			}
		}
	}
	return nil
}

func (f *fetcher) haveChunks(fr *format.Frame) bool {
	for _, c := range fr.Chunks {
		if !f.idx.HasChunk(c.ID) {
			return false
		}
	}
	return true
}

// rebuildAll re-encodes frames from chunks the store holds; a frame that
// does not come out byte for byte (another encoder made it) is fetched.
func (f *fetcher) rebuildAll(ctx context.Context) error {
	if len(f.rebuild) == 0 {
		return nil
	}
	f.pl.m.phase("rebuild", int64(len(f.rebuild)), 0)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(2, f.pl.opts.jobs()))
	for _, r := range f.rebuild {
		g.Go(func() error {
			ok, err := f.rebuildFrame(gctx, f.frame(r))
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				f.pl.res.FramesRebuilt++
			} else {
				d := r.p.Descriptor.Digest
				f.fetch[d] = append(f.fetch[d], r.i)
			}
			f.pl.m.add(1, 0)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for d := range f.fetch {
		sort.Ints(f.fetch[d])
	}
	return nil
}

func (f *fetcher) rebuildFrame(ctx context.Context, fr *format.Frame) (bool, error) {
	raw := make([]byte, 0, fr.RawSize())
	for _, c := range fr.Chunks {
		b, err := f.idx.ReadChunk(ctx, c.ID)
		if err != nil {
			return false, fmt.Errorf("rebuilding frame %s: %w", fr.Digest, err)
		}
		raw = append(raw, b...)
	}
	enc, stored := pack.EncodeFrame(raw)
	if enc != fr.Encoding || uint64(len(stored)) != fr.StoredSize || format.Sum(stored) != fr.Digest {
		f.warnOnce.Do(func() {
			f.pl.warn(fmt.Sprintf("frame %s does not re-encode to the same bytes here (made by another encoder?): fetching such frames", fr.Digest))
		})
		return false, nil
	}
	return true, f.idx.PutFrame(ctx, pack.FrameKey(fr.Chunks), *fr, stored)
}

// span is a byte range of a pack covering frames first..last.
type span struct {
	first, last int
	start, end  int64 // [start, end)
}

// spans turns the frames to fetch of p into range requests: runs of frames
// merged when the gap between them is small, then nearest merged until at
// most max remain; one span over the whole pack when they would cover at
// least fraction of it (or the registry ignores Range).
func spans(p *reader.Pack, frames []int, gap int64, maxRanges int, fraction float64, whole bool) []span {
	size := p.Descriptor.Size
	if len(frames) == 0 {
		return nil
	}
	var out []span
	for _, i := range frames {
		start := int64(p.FrameOffset(i))
		end := start + int64(p.Index.Frames[i].StoredSize)
		if n := len(out); n > 0 && (out[n-1].last == i-1 || start-out[n-1].end <= gap) {
			out[n-1].last, out[n-1].end = i, end
			continue
		}
		out = append(out, span{first: i, last: i, start: start, end: end})
	}
	for len(out) > maxRanges {
		best := 0
		for k := 1; k < len(out)-1; k++ {
			if out[k+1].start-out[k].end < out[best+1].start-out[best].end {
				best = k
			}
		}
		out[best].last, out[best].end = out[best+1].last, out[best+1].end
		out = append(out[:best+1], out[best+2:]...)
	}
	var covered int64
	for _, s := range out {
		covered += s.end - s.start
	}
	if whole || float64(covered) >= fraction*float64(size) {
		return []span{{first: 0, last: len(p.Index.Frames) - 1, start: 0, end: size}}
	}
	return out
}

// fetchAll fetches every planned frame, spans in parallel.
func (f *fetcher) fetchAll(ctx context.Context) error {
	type job struct {
		p    *reader.Pack
		s    span
		need map[int]bool
	}
	var jobs []job
	var frames, bytes int64
	for _, p := range f.packs {
		list := f.fetch[p.Descriptor.Digest]
		if len(list) == 0 {
			continue
		}
		need := map[int]bool{}
		for _, i := range list {
			need[i] = true
			bytes += int64(p.Index.Frames[i].StoredSize)
		}
		frames += int64(len(list))
		o := f.pl.opts
		for _, s := range spans(p, list, o.GapBytes, o.MaxRangesPerPack, o.WholePackFraction, f.pl.repo.IgnoresRange()) {
			jobs = append(jobs, job{p, s, need})
		}
	}
	f.pl.m.phase("fetch", frames, bytes)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.pl.opts.jobs())
	for _, j := range jobs {
		g.Go(func() error { return f.fetchSpan(gctx, j.p, j.s, j.need) })
	}
	return g.Wait()
}

// fetchSpan reads span s of pack p and stores the needed frames in it,
// asking again for the rest of the span when the connection drops.
func (f *fetcher) fetchSpan(ctx context.Context, p *reader.Pack, s span, need map[int]bool) error {
	next := s.first
	retries := f.pl.opts.Registry.Retries
	if retries == 0 {
		retries = 4
	}
	for attempt := 0; ; attempt++ {
		start := int64(p.FrameOffset(next))
		f.pl.mu.Lock()
		if start == 0 && s.last == len(p.Index.Frames)-1 {
			f.pl.res.PackRequests++
		} else {
			f.pl.res.RangeRequests++
		}
		f.pl.mu.Unlock()
		var err error
		next, err = f.readFrames(ctx, p, next, s.last, start, s.end, need)
		if err == nil {
			return nil
		}
		if !isTransient(err) || ctx.Err() != nil || attempt >= retries {
			return err
		}
		f.pl.warn(fmt.Sprintf("%v; asking again from frame %d", err, next))
	}
}

// readFrames reads frames first..last from one range request of
// [start, end) and returns the first frame not done.
func (f *fetcher) readFrames(ctx context.Context, p *reader.Pack, first, last int, start, end int64, need map[int]bool) (int, error) {
	pd := p.Descriptor.Digest
	rc, err := f.pl.repo.OpenRange(ctx, pd, start, end-start)
	if err != nil {
		return first, fmt.Errorf("pack %s: %w", pd, err)
	}
	defer rc.Close()
	for i := first; i <= last; i++ {
		fr := &p.Index.Frames[i]
		if !need[i] {
			if _, err := io.CopyN(io.Discard, rc, int64(fr.StoredSize)); err != nil {
				return i, fmt.Errorf("pack %s: %w", pd, err)
			}
			continue
		}
		stored := make([]byte, fr.StoredSize)
		if _, err := io.ReadFull(rc, stored); err != nil {
			return i, fmt.Errorf("pack %s: frame %d: %w", pd, i, err)
		}
		if _, err := pack.DecodeFrame(fr, stored, true); err != nil {
			return i, fmt.Errorf("pack %s: frame %d at offset %d: %w", pd, i, p.FrameOffset(i), err)
		}
		if err := f.idx.PutForeignFrame(ctx, pack.FrameKey(fr.Chunks), *fr, stored); err != nil {
			return i, err
		}
		f.pl.mu.Lock()
		f.pl.res.FramesFetched++
		f.pl.res.BytesFetched += int64(fr.StoredSize)
		f.pl.mu.Unlock()
		f.pl.m.add(1, int64(fr.StoredSize))
	}
	return last + 1, nil
}

// isTransient tells a dropped connection from bad content.
func isTransient(err error) bool {
	if errors.Is(err, store.ErrDigestMismatch) || errors.Is(err, store.ErrSizeMismatch) ||
		errors.Is(err, format.ErrInvalid) || errors.Is(err, store.ErrNotFound) {
		return false
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || isNetError(err)
}
