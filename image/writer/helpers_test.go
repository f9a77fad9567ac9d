package writer_test

import (
	"context"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/internal/imagetest"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/memstore"
)

func dir(name string, mode uint32, kids ...*writer.Node) *writer.Node {
	return &writer.Node{Entry: format.Entry{Name: name, Type: format.TypeDir, Mode: mode,
		MtimeSec: 1600000000}, Children: kids}
}

func file(name string, mode uint32, content []byte) *writer.Node {
	return &writer.Node{Entry: format.Entry{Name: name, Type: format.TypeReg, Mode: mode,
		MtimeSec: 1600000000, MtimeNsec: 123, Size: uint64(len(content))}, Content: imagetest.Bytes(content)}
}

// pseudo returns n reproducible, poorly compressible bytes.
var pseudo = imagetest.Pseudo

// env is a fresh memory store with its index.
type env struct {
	t   testing.TB
	ctx context.Context
	st  *memstore.Store
	idx *index.Index
}

func newEnv(t testing.TB) *env {
	ctx := context.Background()
	st := memstore.New()
	idx, err := index.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, st: st, idx: idx}
}

func (e *env) write(root *writer.Node, opts writer.Options) *writer.Result {
	e.t.Helper()
	opts.FrameIndex = e.idx
	res, err := writer.Write(e.ctx, e.st, root, opts)
	if err != nil {
		e.t.Fatalf("Write: %v", err)
	}
	return res
}

// entries reads back the image's trees: slash path -> entry ("" is the
// root wrapper's entry).
func (e *env) entries(root format.ChunkID) map[string]format.Entry {
	e.t.Helper()
	out := make(map[string]format.Entry)
	var walk func(id format.ChunkID, prefix string)
	walk = func(id format.ChunkID, prefix string) {
		b, err := e.idx.ReadChunk(e.ctx, id)
		if err != nil {
			e.t.Fatalf("reading tree %s: %v", id, err)
		}
		t, err := format.DecodeTree(b)
		if err != nil {
			e.t.Fatalf("decoding tree %s: %v", id, err)
		}
		for _, en := range t.Entries {
			p := prefix + en.Name
			if prefix == "" && id == root {
				p = ""
			}
			out[p] = en
			if en.Type == format.TypeDir {
				next := p + "/"
				if p == "" {
					next = ""
				}
				walk(en.Tree, next)
			}
		}
	}
	walk(root, "")
	return out
}

// fileBytes reassembles a regular file from its extents.
func (e *env) fileBytes(en format.Entry) []byte {
	e.t.Helper()
	var b []byte
	for _, x := range en.Extents {
		if x.Zero {
			b = append(b, make([]byte, x.Length)...)
			continue
		}
		c, err := e.idx.ReadChunk(e.ctx, x.Chunk)
		if err != nil {
			e.t.Fatalf("reading chunk: %v", err)
		}
		b = append(b, c...)
	}
	return b
}

// countingStore counts blob reads and puts by digest.
type countingStore struct {
	*memstore.Store
	mu    sync.Mutex
	reads map[digest.Digest]int
	puts  map[digest.Digest]int
}

func newCountingStore() *countingStore {
	return &countingStore{Store: memstore.New(), reads: map[digest.Digest]int{}, puts: map[digest.Digest]int{}}
}

func (s *countingStore) ReadBlob(ctx context.Context, d digest.Digest, max int64) ([]byte, error) {
	s.mu.Lock()
	s.reads[d]++
	s.mu.Unlock()
	return s.Store.ReadBlob(ctx, d, max)
}

func (s *countingStore) PutBlob(ctx context.Context, d digest.Digest, b []byte) error {
	s.mu.Lock()
	s.puts[d]++
	s.mu.Unlock()
	return s.Store.PutBlob(ctx, d, b)
}
