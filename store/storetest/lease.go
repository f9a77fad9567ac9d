package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/oci2/oci2/store"
)

func testLeases(t *testing.T, st store.Store) {
	ctx := t.Context()
	rel1, err := st.Lease(ctx)
	skipUnsupported(t, "Lease", err)
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	rel2, err := st.Lease(ctx) // leases are shared
	if err != nil {
		t.Fatalf("second Lease: %v", err)
	}
	_, err = st.Exclusive(ctx, false)
	skipUnsupported(t, "Exclusive", err)
	wantErr(t, "Exclusive while leased", err, store.ErrLocked)
	rel1()
	rel1() // release is idempotent: it must not drop the other lease
	_, err = st.Exclusive(ctx, false)
	wantErr(t, "Exclusive while one lease remains", err, store.ErrLocked)
	rel2()

	relX, err := st.Exclusive(ctx, false)
	if err != nil {
		t.Fatalf("Exclusive with no lease: %v", err)
	}
	_, err = st.Exclusive(ctx, false)
	wantErr(t, "second Exclusive", err, store.ErrLocked)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = st.Lease(short)
	cancel()
	wantErr(t, "Lease under Exclusive, context expiring", err, context.DeadlineExceeded)
	relX()
	relX()

	rel, err := st.Lease(ctx)
	if err != nil {
		t.Fatalf("Lease after Exclusive released: %v", err)
	}
	rel()
}

// testLeaseWaits checks that waiting acquisitions are granted when the
// conflicting holder releases, and not before.
func testLeaseWaits(t *testing.T, st store.Store) {
	ctx := t.Context()
	rel, err := st.Lease(ctx)
	skipUnsupported(t, "Lease", err)
	if err != nil {
		t.Fatal(err)
	}
	if relX, err := st.Exclusive(ctx, false); errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("Exclusive: %v", err)
	} else if err == nil {
		relX()
		t.Fatal("Exclusive granted while a lease was held")
	}
	released := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		relX, err := st.Exclusive(ctx, true)
		if err == nil {
			select {
			case <-released:
			default:
				err = errors.New("Exclusive granted while a lease was held")
			}
			relX()
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // give the goroutine time to block
	close(released)
	rel()
	if err := <-done; err != nil {
		t.Fatalf("Exclusive(wait): %v", err)
	}

	relX, err := st.Exclusive(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	releasedX := make(chan struct{})
	go func() {
		rel, err := st.Lease(ctx)
		if err == nil {
			select {
			case <-releasedX:
			default:
				err = errors.New("Lease granted while Exclusive was held")
			}
			rel()
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	close(releasedX)
	relX()
	if err := <-done; err != nil {
		t.Fatalf("Lease (waiting): %v", err)
	}
}
