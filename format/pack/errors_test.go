package pack

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/oci2/oci2/format"
)

func TestPackerRejectsBadChunks(t *testing.T) {
	p := NewPacker(context.Background(), Options{})
	defer p.Finish()
	for _, c := range []Chunk{
		{ID: idOf("x"), Size: 0},
		{ID: idOf("x"), Size: 2, Data: []byte("x")},
		{ID: idOf("x"), Size: format.MaxFrameRawSize + 1},
	} {
		if err := p.Add(c); err == nil {
			t.Errorf("chunk %+v accepted", c)
		}
	}
}

func idOf(s string) format.ChunkID { return format.Sum([]byte(s)) }

func TestPackerErrors(t *testing.T) {
	chunks := genChunks(7, 8<<20)
	boom := errors.New("disk full")
	st := newMemStore()
	st.failPut = boom
	p := NewPacker(context.Background(), Options{Store: st, Workers: 2})
	var addErr error
	for _, c := range chunks {
		if addErr = p.Add(c); addErr != nil {
			break
		}
	}
	_, err := p.Finish()
	if !errors.Is(err, boom) {
		t.Fatalf("Finish: %v, want %v", err, boom)
	}
	if addErr != nil && !errors.Is(addErr, boom) {
		t.Fatalf("Add: %v, want %v", addErr, boom)
	}
	if _, err2 := p.Finish(); !errors.Is(err2, boom) {
		t.Fatalf("second Finish: %v", err2)
	}
	if err := p.Add(chunks[0]); err == nil {
		t.Fatal("Add after Finish accepted")
	}

	// A failing Fetch.
	p = NewPacker(context.Background(), Options{Fetch: func(context.Context, format.ChunkID) ([]byte, error) { return nil, boom }})
	p.Add(Chunk{ID: idOf("y"), Size: 5})
	if _, err := p.Finish(); !errors.Is(err, boom) || !bytes.Contains([]byte(err.Error()), []byte("fetching chunk")) {
		t.Fatalf("Finish with failing Fetch: %v", err)
	}

	// A cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	p = NewPacker(ctx, Options{Workers: 1})
	cancel()
	for _, c := range chunks {
		if p.Add(c) != nil {
			break
		}
	}
	if _, err := p.Finish(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Finish after cancel: %v", err)
	}
}
