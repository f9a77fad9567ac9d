package pack

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/oci2/oci2/format"
)

// Packer cuts one stream into frames and packs. Add chunks in stream order,
// then Finish. Duplicate chunk IDs within the stream are skipped.
//
// Frame boundaries are cut in Add (SPEC.md §5.2); each closed frame goes to
// a worker that reuses it from the store (by FrameKey, without its bytes)
// or gathers, encodes and puts it. A collector takes the results back in
// stream order, reports them and cuts packs (§5.4). The output depends only
// on the stream, not on Workers or timing.
type Packer struct {
	opts Options
	ctx  context.Context // cancelled when any worker fails
	g    *errgroup.Group

	jobs    chan frameJob
	results chan frameResult
	// tokens bound the frames between Add and their in-order collection:
	// the data they hold and the results waiting for an earlier frame.
	tokens chan struct{}

	// Add side (one goroutine).
	seen map[format.ChunkID]uint32
	open []Chunk
	acc  uint64
	seq  int

	cut      packCutter // collector side, read after g.Wait
	finished bool
	err      error
}

type frameJob struct {
	seq    int
	chunks []Chunk
}

type frameResult struct {
	seq    int
	frame  format.Frame
	reused bool
}

// NewPacker starts a packer; its workers stop at Finish or when ctx ends.
func NewPacker(ctx context.Context, opts Options) *Packer {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	g, gctx := errgroup.WithContext(ctx)
	p := &Packer{
		opts:    opts,
		ctx:     gctx,
		g:       g,
		jobs:    make(chan frameJob, 2*opts.Workers),
		results: make(chan frameResult, 2*opts.Workers),
		tokens:  make(chan struct{}, 2*opts.Workers),
		seen:    make(map[format.ChunkID]uint32),
	}
	var workers sync.WaitGroup
	for i := 0; i < opts.Workers; i++ {
		workers.Add(1)
		g.Go(func() error {
			defer workers.Done()
			return p.work(gctx)
		})
	}
	go func() {
		workers.Wait()
		close(p.results)
	}()
	g.Go(func() error { return p.collect(gctx) })
	return p
}

// Add appends a chunk to the stream. The Packer keeps Data (callers must not
// reuse the slice).
func (p *Packer) Add(c Chunk) error {
	if p.finished {
		return errors.New("packer: Add after Finish")
	}
	if p.err != nil {
		return p.err
	}
	if err := checkChunk(&c); err != nil {
		return err
	}
	if size, dup := p.seen[c.ID]; dup {
		if size != c.Size {
			return fmt.Errorf("packer: chunk %s added with sizes %d and %d", c.ID, size, c.Size)
		}
		return nil
	}
	p.seen[c.ID] = c.Size
	s := uint64(c.Size)
	if frameFull(p.acc, s) {
		if err := p.closeFrame(); err != nil {
			return err
		}
	}
	p.open = append(p.open, c)
	p.acc += s
	if closesFrame(c.ID, s) {
		return p.closeFrame()
	}
	return nil
}

func checkChunk(c *Chunk) error {
	switch {
	case c.Size == 0:
		return fmt.Errorf("packer: chunk %s: zero size", c.ID)
	case c.Size > format.MaxFrameRawSize:
		return fmt.Errorf("packer: chunk %s: %d bytes, more than a frame may hold", c.ID, c.Size)
	case c.Data != nil && len(c.Data) != int(c.Size):
		return fmt.Errorf("packer: chunk %s: %d bytes of data for size %d", c.ID, len(c.Data), c.Size)
	}
	return nil
}

// closeFrame hands the open frame to the workers.
func (p *Packer) closeFrame() error {
	job := frameJob{seq: p.seq, chunks: p.open}
	p.open, p.acc = nil, 0
	p.seq++
	select {
	case p.tokens <- struct{}{}:
	case <-p.ctx.Done():
		return p.fail()
	}
	select {
	case p.jobs <- job:
		return nil
	case <-p.ctx.Done():
		return p.fail()
	}
}

// fail stops the workers after one of them failed (or ctx ended) and
// returns the reason.
func (p *Packer) fail() error {
	if !p.finished {
		p.finished = true
		close(p.jobs)
		p.err = p.g.Wait()
		if p.err == nil {
			p.err = context.Cause(p.ctx)
		}
		p.err = fmt.Errorf("packer: %w", p.err)
	}
	return p.err
}

// Finish closes the stream and returns its packs in order. It may be called
// after an error (it then stops the workers and returns the error again).
func (p *Packer) Finish() ([]format.PackIndex, error) {
	if p.finished {
		if p.err != nil {
			return nil, p.err
		}
		return p.cut.packs, nil
	}
	if p.err == nil && len(p.open) > 0 {
		if err := p.closeFrame(); err != nil {
			return nil, err
		}
	}
	p.finished = true
	close(p.jobs)
	if err := p.g.Wait(); err != nil {
		p.err = fmt.Errorf("packer: %w", err)
		return nil, p.err
	}
	p.cut.close()
	return p.cut.packs, nil
}

func (p *Packer) work(ctx context.Context) error {
	for {
		var job frameJob
		var ok bool
		select {
		case job, ok = <-p.jobs:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		r, err := p.frame(ctx, job)
		if err != nil {
			return err
		}
		select {
		case p.results <- r:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// frame reuses a stored frame or makes and stores a new one.
func (p *Packer) frame(ctx context.Context, job frameJob) (frameResult, error) {
	refs := make([]format.ChunkRef, len(job.chunks))
	for i, c := range job.chunks {
		refs[i] = format.ChunkRef{ID: c.ID, Size: c.Size}
	}
	key := FrameKey(refs)
	if st := p.opts.Store; st != nil {
		f, ok, err := st.LookupFrame(ctx, key)
		if err != nil {
			return frameResult{}, fmt.Errorf("looking up frame %s: %w", key, err)
		}
		if ok {
			if err := sameChunks(&f, refs); err != nil {
				return frameResult{}, fmt.Errorf("stored frame %s for key %s: %w", f.Digest, key, err)
			}
			return frameResult{seq: job.seq, frame: f, reused: true}, nil
		}
	}
	raw, err := p.gather(ctx, job.chunks)
	if err != nil {
		return frameResult{}, err
	}
	enc, stored := EncodeFrame(raw)
	f := format.Frame{Encoding: enc, StoredSize: uint64(len(stored)), Digest: format.Sum(stored), Chunks: refs}
	if st := p.opts.Store; st != nil {
		if err := st.PutFrame(ctx, key, f, stored); err != nil {
			return frameResult{}, fmt.Errorf("storing frame %s: %w", f.Digest, err)
		}
	}
	return frameResult{seq: job.seq, frame: f}, nil
}

func sameChunks(f *format.Frame, refs []format.ChunkRef) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if len(f.Chunks) != len(refs) {
		return fmt.Errorf("%d chunks, want %d", len(f.Chunks), len(refs))
	}
	for i := range refs {
		if f.Chunks[i] != refs[i] {
			return fmt.Errorf("chunk %d is %s (%d bytes), want %s (%d bytes)",
				i, f.Chunks[i].ID, f.Chunks[i].Size, refs[i].ID, refs[i].Size)
		}
	}
	return nil
}

// gather returns the frame's raw bytes, fetching chunks added without data.
func (p *Packer) gather(ctx context.Context, chunks []Chunk) ([]byte, error) {
	if len(chunks) == 1 && chunks[0].Data != nil {
		return chunks[0].Data, nil
	}
	var n uint64
	for _, c := range chunks {
		n += uint64(c.Size)
	}
	raw := make([]byte, 0, n)
	for _, c := range chunks {
		data := c.Data
		if data == nil {
			if p.opts.Fetch == nil {
				return nil, fmt.Errorf("chunk %s has no data and there is no Fetch", c.ID)
			}
			var err error
			if data, err = p.opts.Fetch(ctx, c.ID); err != nil {
				return nil, fmt.Errorf("fetching chunk %s: %w", c.ID, err)
			}
			if len(data) != int(c.Size) {
				return nil, fmt.Errorf("fetching chunk %s: got %d bytes, want %d", c.ID, len(data), c.Size)
			}
		}
		raw = append(raw, data...)
	}
	return raw, nil
}

// collect takes results back in stream order, reports them and cuts packs.
func (p *Packer) collect(ctx context.Context) error {
	pending := make(map[int]frameResult)
	next := 0
	for {
		var r frameResult
		var ok bool
		select {
		case r, ok = <-p.results:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		pending[r.seq] = r
		for {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if p.opts.OnFrame != nil {
				p.opts.OnFrame(FrameEvent{Frame: r.frame, Reused: r.reused})
			}
			p.cut.add(r.frame)
			<-p.tokens
		}
	}
}
