package index_test

import (
	"context"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/local"
)

// keeping is a local store that records the blobs it is asked to keep.
type keeping struct {
	*local.Store
	mu   sync.Mutex
	kept map[digest.Digest]bool
}

func (k *keeping) Keep(ctx context.Context, d digest.Digest) error {
	k.mu.Lock()
	k.kept[d] = true
	k.mu.Unlock()
	return k.Store.Keep(ctx, d)
}

// TestWriteKeepsUnitsOfAKilledWriter: a process killed after it stored
// units, before any Sync, leaves blobs a power loss could take away. The
// index adopts them; a later write that relies on them keeps every one, so
// that its SetRef makes them durable (store/local counts the fsyncs).
func TestWriteKeepsUnitsOfAKilledWriter(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(60)
	dir := t.TempDir()
	open := func() *local.Store {
		st, err := local.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	put(t, open(), "base", fx.base)

	killed := open()
	// Units small enough that this small write fills them (a write that
	// fills none stores its frames' blobs instead).
	small := index.WithUnitSize(16 << 10)
	idx, err := index.New(ctx, killed, small)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Write(ctx, killed, tree(fx.derived), writer.Options{Config: plat, FrameIndex: idx}); err != nil {
		t.Fatal(err)
	}
	units, err := killed.ListUnits(ctx)
	if err != nil || len(units) == 0 {
		t.Fatalf("the killed writer stored no units: %v", err)
	}

	st := &keeping{Store: open(), kept: map[digest.Digest]bool{}}
	res := put(t, st, "derived", fx.derived, small)
	if res.Stats.StoredNew != 0 {
		t.Fatalf("the write stored %d bytes: it should rely on the killed writer's", res.Stats.StoredNew)
	}
	for _, d := range units {
		if !st.kept[d] {
			t.Errorf("unit %s relied on but not kept for the ref's Sync", d)
		}
	}
}
