package writer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/oci2/oci2/format/pack"
)

func TestBudgetBoundsTheHead(t *testing.T) {
	// The head passes a full budget, but only while it has less than
	// headSlack queued: a big file at the head is not queued whole. (Its
	// queue counts what it took within the budget too.)
	ctx := context.Background()
	b := newBudget(1 << 20)
	head := &fileJob{seq: 0, notify: make(chan struct{}, 1)}
	const n = 256 << 10
	var got int64
	for got+n <= headSlack {
		if err := b.acquire(ctx, head, n); err != nil {
			t.Fatalf("acquire after %d bytes: %v", got, err)
		}
		head.push(pack.Chunk{Size: n}, n)
		got += n
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := b.acquire(short, head, n); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("head with %d bytes queued over a full budget: acquire = %v, want it to wait", head.queuedCost(), err)
	}
	// A later job waits too; once the consumer takes the head's chunks, the
	// head passes again.
	if err := b.acquire(short, &fileJob{seq: 1}, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("later job over a full budget: acquire = %v, want it to wait", err)
	}
	done := make(chan error, 1)
	go func() { done <- b.acquire(ctx, head, n) }()
	cs, _, _ := head.take()
	for range cs {
		b.release(n)
	}
	if err := <-done; err != nil {
		t.Fatalf("head after the consumer took its chunks: %v", err)
	}
}
