package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
)

// testConcurrentPuts has many goroutines store the same blobs and their own
// blobs at once, through both write paths, while others read.
func testConcurrentPuts(t *testing.T, st store.Store) {
	ctx := t.Context()
	const workers, own = 8, 10
	shared, sharedD := blob(900, 200_000)
	errs := make(chan error, workers*(own+2))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w%2 == 0 {
				errs <- st.PutBlob(ctx, sharedD, shared)
			} else {
				errs <- st.WriteBlob(ctx, sharedD, int64(len(shared)), bytes.NewReader(shared))
			}
			for i := range own {
				b, d := blob(uint64(1000+w*own+i), 1000+i*500)
				errs <- st.PutBlob(ctx, d, b)
			}
			// Reads of the shared blob see either nothing or all of it.
			got, err := st.ReadBlob(ctx, sharedD, 0)
			if err == nil && !bytes.Equal(got, shared) {
				err = fmt.Errorf("worker %d read a partial shared blob (%d bytes)", w, len(got))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	mustRead(t, st, sharedD, shared)
	want := map[digest.Digest]bool{sharedD: true}
	for w := range workers {
		for i := range own {
			b, d := blob(uint64(1000+w*own+i), 1000+i*500)
			mustRead(t, st, d, b)
			want[d] = true
		}
	}
	if infos, ok := listAll(t, st); ok && len(infos) != len(want) {
		t.Fatalf("ListBlobs: %d blobs, want %d", len(infos), len(want))
	}
}

// testConcurrentRefs has goroutines set distinct refs at once: no update
// may be lost.
func testConcurrentRefs(t *testing.T, st store.Store) {
	ctx := t.Context()
	const workers, each = 6, 8
	desc := putDesc(t, st, 950, nil)
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- st.SetRef(ctx, fmt.Sprintf("example.com/w%d:t%d", w, i), desc)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("SetRef: %v", err)
		}
	}
	refs, err := st.ListRefs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != workers*each {
		t.Fatalf("ListRefs: %d refs after %d concurrent SetRefs", len(refs), workers*each)
	}
}
