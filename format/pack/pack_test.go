package pack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"sync"
	"testing"

	"github.com/oci2/oci2/format"
)

// memStore is an in-memory FrameStore that counts what it is asked.
type memStore struct {
	mu      sync.Mutex
	byKey   map[format.ChunkID]format.Frame
	blobs   map[format.ChunkID][]byte
	puts    int
	lookups int
	failPut error
}

func newMemStore() *memStore {
	return &memStore{byKey: map[format.ChunkID]format.Frame{}, blobs: map[format.ChunkID][]byte{}}
}

func (m *memStore) LookupFrame(ctx context.Context, key format.ChunkID) (format.Frame, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	f, ok := m.byKey[key]
	return f, ok, nil
}

func (m *memStore) PutFrame(ctx context.Context, key format.ChunkID, f format.Frame, stored []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failPut != nil {
		return m.failPut
	}
	if format.Sum(stored) != f.Digest || uint64(len(stored)) != f.StoredSize {
		return fmt.Errorf("PutFrame: frame %s does not match its bytes", f.Digest)
	}
	m.puts++
	m.byKey[key] = f
	m.blobs[f.Digest] = bytes.Clone(stored)
	return nil
}

func (m *memStore) frame(ctx context.Context, f *format.Frame) ([]byte, error) {
	m.mu.Lock()
	b, ok := m.blobs[f.Digest]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("frame %s not stored", f.Digest)
	}
	return b, nil
}

var words = []string{"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "lib", "usr",
	"share", "locale", "ELF", "\x00\x00\x00\x00", "func", "return", "error", "nil", "package", "import"}

// genChunks makes a seeded stream of chunks: sizes from 1 byte to 256 KiB,
// half of them random bytes, half text-like (compressible), and a few
// repeated chunk IDs.
func genChunks(seed int64, total int) []Chunk {
	rng := rand.New(rand.NewSource(seed))
	var out []Chunk
	for n := 0; n < total; {
		var size int
		switch rng.Intn(4) {
		case 0:
			size = rng.Intn(4096) + 1
		case 3:
			size = 16<<10 + rng.Intn(240<<10)
		default:
			size = 16<<10 + rng.Intn(112<<10)
		}
		b := make([]byte, 0, size)
		if rng.Intn(2) == 0 {
			b = b[:size]
			rng.Read(b)
		} else {
			for len(b) < size {
				b = append(b, words[rng.Intn(len(words))]...)
				b = append(b, ' ')
			}
			b = b[:size]
		}
		out = append(out, Chunk{ID: format.Sum(b), Size: uint32(size), Data: b})
		if len(out) > 10 && rng.Intn(50) == 0 {
			out = append(out, out[rng.Intn(len(out)-1)])
		}
		n += size
	}
	return out
}

// runPacker packs chunks and returns the packs and the frame events.
func runPacker(t testing.TB, chunks []Chunk, opts Options) ([]format.PackIndex, []FrameEvent) {
	t.Helper()
	var events []FrameEvent
	opts.OnFrame = func(ev FrameEvent) { events = append(events, ev) }
	p := NewPacker(context.Background(), opts)
	for _, c := range chunks {
		if err := p.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	packs, err := p.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return packs, events
}

// refFrames cuts frames as SPEC.md §5.2 reads, with plain arithmetic.
func refFrames(chunks []Chunk) [][]format.ChunkRef {
	var frames [][]format.ChunkRef
	var open []format.ChunkRef
	var acc uint64
	seen := map[format.ChunkID]bool{}
	for _, c := range chunks {
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		s := uint64(c.Size)
		if acc > 0 && acc+s > 1048576 {
			frames, open, acc = append(frames, open), nil, 0
		}
		open = append(open, format.ChunkRef{ID: c.ID, Size: c.Size})
		acc += s
		d := uint64(c.ID[0])<<24 | uint64(c.ID[1])<<16 | uint64(c.ID[2])<<8 | uint64(c.ID[3])
		if s >= 262144 || d < s*(1<<32)/262144 {
			frames, open, acc = append(frames, open), nil, 0
		}
	}
	if len(open) > 0 {
		frames = append(frames, open)
	}
	return frames
}

// refPacks cuts packs as SPEC.md §5.4 reads.
func refPacks(frames []format.Frame) [][]format.Frame {
	var packs [][]format.Frame
	var open []format.Frame
	var acc uint64
	for _, f := range frames {
		open = append(open, f)
		z := f.StoredSize
		acc += z
		d := f.Chunks[0].ID
		x := uint64(d[4])<<24 | uint64(d[5])<<16 | uint64(d[6])<<8 | uint64(d[7])
		if acc >= 33554432 || (acc >= 4194304 && x < z*(1<<32)/4194304) {
			packs, open, acc = append(packs, open), nil, 0
		}
	}
	if len(open) > 0 {
		packs = append(packs, open)
	}
	return packs
}

func TestPackerMatchesReference(t *testing.T) {
	chunks := genChunks(1, 40<<20)
	packs, events := runPacker(t, chunks, Options{Workers: 2})
	var frames []format.Frame
	for _, ev := range events {
		frames = append(frames, ev.Frame)
	}
	want := refFrames(chunks)
	if len(frames) != len(want) {
		t.Fatalf("%d frames, reference %d", len(frames), len(want))
	}
	for i := range frames {
		if !reflect.DeepEqual(frames[i].Chunks, want[i]) {
			t.Fatalf("frame %d: chunks differ from the reference", i)
		}
	}
	wantPacks := refPacks(frames)
	if len(packs) != len(wantPacks) || len(packs) < 3 {
		t.Fatalf("%d packs, reference %d (want at least 3)", len(packs), len(wantPacks))
	}
	for i := range packs {
		if !reflect.DeepEqual(packs[i].Frames, wantPacks[i]) {
			t.Fatalf("pack %d differs from the reference", i)
		}
	}
}

func TestBelow(t *testing.T) {
	for _, c := range []struct {
		x      uint32
		z, avg uint64
		want   bool
	}{
		{16383, 1, 262144, true}, // floor(2^32/2^18) = 16384
		{16384, 1, 262144, false},
		{0, 0, 262144, false},
		{0xffffffff, 262143, 262144, false},
		{0xffffbfff, 262143, 262144, true}, // floor((2^18-1)*2^14) = 2^32-2^14
		{0xffffc000, 262143, 262144, false},
		{0xffffffff, 262144, 262144, true}, // floor = 2^32: every x is below
		{0, 3, 4194304, true},              // floor(3*2^10) = 3072
		{3071, 3, 4194304, true},
		{3072, 3, 4194304, false},
		{0xffffffff, 1 << 40, 4194304, true},
	} {
		if got := below(c.x, c.z, c.avg); got != c.want {
			t.Errorf("below(%#x, %d, %d) = %v, want %v", c.x, c.z, c.avg, got, c.want)
		}
	}
}

func TestPackerReusesStoredFrames(t *testing.T) {
	chunks := genChunks(3, 12<<20)
	st := newMemStore()
	first, _ := runPacker(t, chunks, Options{Store: st})
	putsBefore := st.puts
	if putsBefore == 0 {
		t.Fatal("first run stored nothing")
	}
	// Second run: no data, a Fetch that counts.
	var fetches int
	var mu sync.Mutex
	bare := make([]Chunk, len(chunks))
	for i, c := range chunks {
		bare[i] = Chunk{ID: c.ID, Size: c.Size}
	}
	fetch := func(ctx context.Context, id format.ChunkID) ([]byte, error) {
		mu.Lock()
		fetches++
		mu.Unlock()
		return nil, errors.New("unexpected fetch")
	}
	second, events := runPacker(t, bare, Options{Store: st, Fetch: fetch})
	if st.puts != putsBefore || fetches != 0 {
		t.Fatalf("second run: %d PutFrame, %d Fetch; want 0 and 0", st.puts-putsBefore, fetches)
	}
	for i, ev := range events {
		if !ev.Reused {
			t.Fatalf("frame %d not reused", i)
		}
	}
	if !reflect.DeepEqual(first, second) {
		t.Fatal("reused frames give different pack indexes")
	}
}

func TestPackerFetchesMissingData(t *testing.T) {
	chunks := genChunks(4, 2<<20)
	byID := map[format.ChunkID][]byte{}
	bare := make([]Chunk, len(chunks))
	for i, c := range chunks {
		byID[c.ID] = c.Data
		bare[i] = Chunk{ID: c.ID, Size: c.Size}
		if i%2 == 0 {
			bare[i].Data = c.Data
		}
	}
	fetch := func(ctx context.Context, id format.ChunkID) ([]byte, error) { return byID[id], nil }
	want, _ := runPacker(t, chunks, Options{})
	got, _ := runPacker(t, bare, Options{Fetch: fetch})
	if !reflect.DeepEqual(got, want) {
		t.Fatal("fetched chunks give different packs")
	}
}

// TestPackerResync: inserting chunks in the middle of a stream changes only
// the packs around the insertion.
func TestPackerResync(t *testing.T) {
	chunks := genChunks(5, 96<<20)
	mid := len(chunks) / 2
	extra := genChunks(6, 300<<10)
	edited := append(append(append([]Chunk{}, chunks[:mid]...), extra...), chunks[mid:]...)
	v1, _ := runPacker(t, chunks, Options{})
	v2, _ := runPacker(t, edited, Options{})
	digests := func(ps []format.PackIndex) map[format.ChunkID]bool {
		m := map[format.ChunkID]bool{}
		for i := range ps {
			b, err := ps[i].Encode()
			if err != nil {
				t.Fatal(err)
			}
			m[format.Sum(b)] = true
		}
		return m
	}
	old := digests(v1)
	changed := 0
	for d := range digests(v2) {
		if !old[d] {
			changed++
		}
	}
	t.Logf("%d packs before, %d after, %d new", len(v1), len(v2), changed)
	if len(v1) < 6 || changed > 2 {
		t.Fatalf("%d of %d packs changed after inserting %d chunks", changed, len(v2), len(extra))
	}
}

func TestPackerDedupsChunks(t *testing.T) {
	a := []byte("chunk a")
	b := []byte("chunk b")
	ca := Chunk{ID: format.Sum(a), Size: uint32(len(a)), Data: a}
	cb := Chunk{ID: format.Sum(b), Size: uint32(len(b)), Data: b}
	packs, _ := runPacker(t, []Chunk{ca, cb, ca, {ID: ca.ID, Size: ca.Size}, cb}, Options{})
	var n int
	for _, p := range packs {
		for _, f := range p.Frames {
			n += len(f.Chunks)
		}
	}
	if n != 2 {
		t.Fatalf("%d chunks packed, want 2", n)
	}
	p := NewPacker(context.Background(), Options{})
	defer p.Finish()
	p.Add(ca)
	if err := p.Add(Chunk{ID: ca.ID, Size: 3}); err == nil {
		t.Fatal("a chunk ID with two sizes was accepted")
	}
}

func TestFrameKey(t *testing.T) {
	refs := []format.ChunkRef{{ID: idOf("a"), Size: 1}, {ID: idOf("b"), Size: 1}}
	h := sha256.New()
	h.Write([]byte("oci2-frame-v1\x00zstd/klauspost-1.20.4/l3\x00"))
	h.Write(refs[0].ID[:])
	h.Write(refs[1].ID[:])
	want := hex.EncodeToString(h.Sum(nil))
	if got := FrameKey(refs); hex.EncodeToString(got[:]) != want {
		t.Fatalf("FrameKey %x, want %s", got, want)
	}
}

func BenchmarkPacker(b *testing.B) {
	chunks := genChunks(9, 64<<20)
	var total int64
	seen := map[format.ChunkID]bool{}
	for _, c := range chunks {
		if !seen[c.ID] {
			seen[c.ID] = true
			total += int64(c.Size)
		}
	}
	b.SetBytes(total)
	for b.Loop() {
		runPacker(b, chunks, Options{})
	}
}
