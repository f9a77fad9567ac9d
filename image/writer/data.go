package writer

import (
	"context"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/chunking"
	"github.com/oci2/oci2/format/pack"
)

// The chunk bytes read ahead of the data Packer are bounded by default to
// inFlightPerWorker per worker, at least minInFlight. Reading (chunking and
// hashing) costs about half of compressing, so a little read-ahead keeps
// the compressors busy; more only costs memory (64 MiB, the former
// default, idled the cores no less on debian-build and held a larger heap).
const (
	inFlightPerWorker = 8 << 20
	minInFlight       = 16 << 20
)

// chunkOverhead is what a queued chunk costs besides its bytes, so that many
// tiny files also count against the budget.
const chunkOverhead = 128

// dataStage reads and chunks files in parallel and feeds their chunks to one
// Packer strictly in canonical order.
type dataStage struct {
	p       *plan
	packer  *pack.Packer
	workers int
	budget  *budget
	rep     *reporter
	refetch *refetcher
}

// fileJob is one file being read by a worker. The worker appends chunks;
// the consumer takes them in order. extents belong to the worker until done.
type fileJob struct {
	seq     int
	w       *wnode
	notify  chan struct{} // capacity 1: "chunks or done changed"
	extents []format.Extent

	verified bool // extents are w.cand, checked; no chunks are queued

	mu     sync.Mutex
	chunks []pack.Chunk
	queued int64 // budget held by chunks
	done   bool
	err    error
}

func (j *fileJob) push(c pack.Chunk, cost int64) {
	j.mu.Lock()
	j.chunks = append(j.chunks, c)
	j.queued += cost
	j.mu.Unlock()
	j.signal()
}

// queuedCost returns the budget held by chunks the consumer has not taken.
func (j *fileJob) queuedCost() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.queued
}

func (j *fileJob) finish(err error) {
	j.mu.Lock()
	j.done, j.err = true, err
	j.mu.Unlock()
	j.signal()
}

func (j *fileJob) signal() {
	select {
	case j.notify <- struct{}{}:
	default:
	}
}

// take returns the queued chunks and whether the job is over.
func (j *fileJob) take() ([]pack.Chunk, bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	cs := j.chunks
	j.chunks, j.queued = nil, 0
	return cs, j.done, j.err
}

// jobsAhead bounds the jobs created ahead of the consumer (they cost memory
// per file; the budget bounds their bytes).
const jobsAhead = 4096

// run chunks every file of the plan into the Packer.
func (d *dataStage) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	next := make(chan *fileJob)               // to the workers
	ordered := make(chan *fileJob, jobsAhead) // to the consumer, in canonical order
	g.Go(func() error {
		defer close(next)
		defer close(ordered)
		for i, w := range d.p.files {
			if !needsRead(w) {
				continue
			}
			j := &fileJob{seq: i, w: w, notify: make(chan struct{}, 1)}
			for _, ch := range []chan *fileJob{ordered, next} {
				select {
				case ch <- j:
				case <-gctx.Done():
					return nil
				}
			}
		}
		return nil
	})
	for range d.workers {
		g.Go(func() error {
			sp := chunking.NewSplitter()
			var buf []byte // for checking candidates
			for j := range next {
				if len(j.w.cand) > 0 {
					if buf == nil {
						buf = make([]byte, verifyBufSize)
					}
					if verifyFile(gctx, j.w.n.Content, int64(j.w.e.Size), j.w.cand, buf) {
						j.verified, j.extents = true, j.w.cand
						j.finish(nil)
						continue
					}
				}
				if err := d.read(gctx, sp, j); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error { return d.consume(gctx, ordered) })
	return g.Wait()
}

// needsRead reports whether a file's extents come from reading it.
func needsRead(w *wnode) bool { return w.e.Size > 0 && len(w.e.Extents) == 0 }

// consume adds every file's chunks to the Packer in canonical order, taking
// the jobs of the files to read from ordered.
func (d *dataStage) consume(ctx context.Context, ordered <-chan *fileJob) error {
	for i, w := range d.p.files {
		d.budget.setHead(i)
		if !needsRead(w) {
			if err := d.addKnown(w); err != nil {
				return err
			}
			continue
		}
		var j *fileJob
		select {
		case j = <-ordered:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j == nil || j.seq != i {
			return fmt.Errorf("internal error: job for file %d missing", i)
		}
		for {
			cs, done, err := j.take()
			for _, c := range cs {
				if err := d.packer.Add(c); err != nil {
					return fmt.Errorf("packing %s: %w", describe(w), err)
				}
				d.budget.release(int64(len(c.Data)) + chunkOverhead)
			}
			if err != nil {
				return err
			}
			if done {
				break
			}
			select {
			case <-j.notify:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		w.e.Extents = j.extents
		if j.verified {
			// as known extents: frames the store has are not read again
			w.verified = true
			if err := d.addKnown(w); err != nil {
				return err
			}
		}
	}
	return nil
}

// addKnown adds the chunks of a file whose extents are known without bytes:
// the Packer fetches them only if their frame is not stored.
func (d *dataStage) addKnown(w *wnode) error {
	var off uint64
	for _, e := range w.e.Extents {
		at := off
		off += e.Length
		if e.Zero {
			continue
		}
		if e.Length == 0 || e.Length > format.ChunkMaxSize {
			return fmt.Errorf("%s: invalid data extent of %d bytes", describe(w), e.Length)
		}
		if w.n.Content != nil {
			d.refetch.register(e.Chunk, w, at, uint32(e.Length))
		}
		if err := d.packer.Add(pack.Chunk{ID: e.Chunk, Size: uint32(e.Length)}); err != nil {
			return fmt.Errorf("packing %s: %w", describe(w), err)
		}
	}
	d.rep.bytesRead.Add(int64(w.e.Size))
	return nil
}

// read chunks one file into its job.
func (d *dataStage) read(ctx context.Context, sp *chunking.Splitter, j *fileJob) (err error) {
	defer func() { j.finish(err) }()
	emit := func(e format.Extent, data []byte) error {
		j.extents = append(j.extents, e)
		d.rep.bytesRead.Add(int64(e.Length))
		if e.Zero {
			return nil
		}
		cost := int64(len(data)) + chunkOverhead
		if err := d.budget.acquire(ctx, j, cost); err != nil {
			return err
		}
		j.push(pack.Chunk{ID: e.Chunk, Size: uint32(len(data)), Data: append([]byte(nil), data...)}, cost)
		return nil
	}
	if err := splitContent(sp, j.w, emit); err != nil {
		return err
	}
	return ctx.Err()
}

// smallFile is the size under which files are read without looking for holes.
const smallFile = 2 * format.ZeroRunMin

// splitContent opens w's content and splits exactly its size.
func splitContent(sp *chunking.Splitter, w *wnode, emit chunking.EmitFunc) error {
	rc, err := w.n.Content.Open()
	if err != nil {
		return fmt.Errorf("opening %s: %w", describe(w), err)
	}
	defer rc.Close()
	size := int64(w.e.Size)
	// Holes matter only from ZeroRunMin bytes on; for small files the lseek
	// calls of SplitFile cost more than reading (both give the same extents).
	if f, ok := rc.(*os.File); ok && size >= smallFile {
		err = sp.SplitFile(f, size, emit)
	} else {
		err = sp.Split(rc, size, emit)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", describe(w), err)
	}
	return nil
}

// describe names a file in errors: its source path when known.
func describe(w *wnode) string {
	if sf, ok := w.n.Content.(*SourceFile); ok {
		return sf.Path
	}
	return fmt.Sprintf("%q", w.e.Name)
}

// headSlack is what the job the consumer waits on may queue beyond the
// budget: a few frames, so reading it overlaps with packing it.
const headSlack = 4 << 20

// budget bounds the bytes read ahead. The job the consumer waits on (the
// head) passes a full budget while it has less than headSlack queued, so a
// full budget never blocks the pipeline, and a big file at the head is
// read at the Packer's pace instead of being queued whole.
type budget struct {
	mu      sync.Mutex
	used    int64
	max     int64
	head    int
	waiting int
	wake    chan struct{} // closed and replaced when used or head changes
}

func newBudget(max int64) *budget { return &budget{max: max, wake: make(chan struct{})} }

func (b *budget) acquire(ctx context.Context, j *fileJob, n int64) error {
	for {
		b.mu.Lock()
		if b.used+n <= b.max || (j.seq <= b.head && j.queuedCost()+n <= headSlack) {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		w := b.wake
		b.waiting++
		b.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			b.mu.Lock()
			b.waiting--
			b.mu.Unlock()
			return ctx.Err()
		}
		b.mu.Lock()
		b.waiting--
		b.mu.Unlock()
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.broadcast()
	b.mu.Unlock()
}

func (b *budget) setHead(seq int) {
	b.mu.Lock()
	b.head = seq
	b.broadcast()
	b.mu.Unlock()
}

func (b *budget) broadcast() {
	if b.waiting > 0 {
		close(b.wake)
		b.wake = make(chan struct{})
	}
}
