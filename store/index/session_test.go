package index_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store/local"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/index"
)

// derive returns base with a new file after every file: suffix names them,
// seed seeds their bytes.
func derive(base map[string][]byte, suffix string, seed int64) map[string][]byte {
	out := map[string][]byte{}
	i := int64(0)
	for name, b := range base {
		out[name] = b
		out[name[:len(name)-1]+suffix] = text(seed+i, 1<<10+int(i)*53%(20<<10))
		i++
	}
	return out
}

// TestConcurrentWritesOwnStats: two writes sharing one Index at once (as
// the daemon's exports do) each report the bytes and the virtual frames
// they stored themselves, as when each runs alone, and together the bytes
// the store grew by. (Stored bytes vary a little from run to run: units
// take new chunks in the order the Packer's workers put their frames.)
func TestConcurrentWritesOwnStats(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(120)
	a, b := derive(fx.base, "b", 100000), derive(fx.base, "c", 200000)

	alone := func(files map[string][]byte) writer.Stats {
		st := openLocal(t)
		put(t, st, "base", fx.base)
		return put(t, st, "x", files).Stats
	}
	wantA, wantB := alone(a), alone(b)
	if wantA.FramesVirtual == 0 || wantB.FramesVirtual == 0 {
		t.Fatalf("fixture makes no virtual frames: %+v %+v", wantA, wantB)
	}

	st := openLocal(t)
	put(t, st, "base", fx.base)
	idx, err := index.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	before := blobBytes(t, st)
	// b runs whole while a is between its data and its commit: a's
	// session is open, its units partly sealed, partly buffered.
	var resB *writer.Result
	var errB error
	var once sync.Once
	resA, err := writer.Write(ctx, st, tree(a), writer.Options{Config: plat, FrameIndex: idx,
		Extents: func(*writer.Node, []format.Extent) {
			once.Do(func() { resB, errB = writer.Write(ctx, st, tree(b), writer.Options{Config: plat, FrameIndex: idx}) })
		}})
	if err != nil || errB != nil {
		t.Fatalf("writes: %v, %v", err, errB)
	}
	for _, c := range []struct {
		name      string
		got, want writer.Stats
	}{{"a", resA.Stats, wantA}, {"b", resB.Stats, wantB}} {
		if d := c.got.StoredNew - c.want.StoredNew; d > c.want.StoredNew/50 || -d > c.want.StoredNew/50 ||
			c.got.FramesVirtual != c.want.FramesVirtual {
			t.Errorf("write %s at once with another: stored %d bytes in %d virtual frames; alone: %d in %d",
				c.name, c.got.StoredNew, c.got.FramesVirtual, c.want.StoredNew, c.want.FramesVirtual)
		}
	}
	grown := blobBytes(t, st) - before
	if meta := grown - resA.Stats.StoredNew - resB.Stats.StoredNew; meta < 0 || meta > 128<<10 {
		t.Errorf("the store grew by %d bytes, the writes say %d + %d", grown, resA.Stats.StoredNew, resB.Stats.StoredNew)
	}
}

// blockingUnits is a local store whose PutBlob (units: frames go through
// PutHashedBlob) blocks until its context ends.
type blockingUnits struct {
	*local.Store
	started chan struct{} // closed by the first PutBlob
	once    sync.Once
	running atomic.Int32
}

func (b *blockingUnits) PutBlob(ctx context.Context, d digest.Digest, data []byte) error {
	b.running.Add(1)
	defer b.running.Add(-1)
	b.once.Do(func() { close(b.started) })
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(20 * time.Second): // bounds the test when it fails
		return b.Store.PutBlob(ctx, d, data)
	}
}

// failAfter is file content that fails to open once ch is closed.
type failAfter struct{ ch chan struct{} }

func (f failAfter) Open() (io.ReadCloser, error) {
	select {
	case <-f.ch:
	case <-time.After(20 * time.Second):
	}
	return nil, errors.New("unreadable file")
}

// TestFailedWriteLeavesNoSeal: a write that fails while a unit is being
// sealed returns only once the seal stopped, so nothing it started
// outlives its lease (or the daemon's index lock).
func TestFailedWriteLeavesNoSeal(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(40)
	st := &blockingUnits{Store: openLocal(t), started: make(chan struct{})}
	put(t, st.Store, "base", fx.base)
	idx, err := index.New(ctx, st, index.WithUnits(st.Store), index.WithUnitSize(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	root := tree(fx.derived)
	root.Children = append(root.Children, &writer.Node{
		Entry:   format.Entry{Name: "zzz", Type: format.TypeReg, Mode: 0o644, Size: 100},
		Content: failAfter{st.started},
	})
	if _, err := writer.Write(ctx, st, root, writer.Options{Config: plat, FrameIndex: idx}); err == nil {
		t.Fatal("write of an unreadable file succeeded")
	}
	select {
	case <-st.started:
	default:
		t.Fatal("no unit was sealed")
	}
	if n := st.running.Load(); n != 0 {
		t.Errorf("%d seals still storing units after the write returned", n)
	}
}
