package storetest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store"
)

// Corrupter is implemented by stores, or test wrappers around them, that can
// replace a stored blob's bytes without verification. When the store under
// test implements it, Run also checks that reads detect corruption.
type Corrupter interface {
	Corrupt(ctx context.Context, d digest.Digest, data []byte) error
}

// NewStoreFunc returns a fresh, empty store for one subtest; cleanup goes
// through t.Cleanup.
type NewStoreFunc func(t *testing.T) store.Store

// Run runs every conformance test against stores made by newStore. Optional
// roles (store.RangeReader, Corrupter) are tested when implemented. A
// backend that cannot list or delete blobs, or has no leases (a registry),
// returns errors.ErrUnsupported from those methods: their tests are skipped
// and other tests skip the checks that need them.
func Run(t *testing.T, newStore NewStoreFunc) {
	runAll(t, newStore, []subtest[store.Store]{
		{"PutGet", testPutGet},
		{"PutCopies", testPutCopies},
		{"PutIdempotent", testPutIdempotent},
		{"PutDigestMismatch", testPutDigestMismatch},
		{"InvalidDigest", testInvalidDigest},
		{"TooLarge", testTooLarge},
		{"NotFound", testNotFound},
		{"Open", testOpen},
		{"Corruption", testCorruption},
		{"ReadRange", testReadRange},
		{"WriteBlob", testWriteBlob},
		{"WriteBlobErrors", testWriteBlobErrors},
		{"ListBlobs", testListBlobs},
		{"DeleteBlob", testDeleteBlob},
		{"Refs", testRefs},
		{"RefErrors", testRefErrors},
		{"Leases", testLeases},
		{"LeaseWaits", testLeaseWaits},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ConcurrentRefs", testConcurrentRefs},
	})
}

// subtest is one conformance test of a role S.
type subtest[S any] struct {
	name string
	fn   func(t *testing.T, st S)
}

// runAll runs each test as a subtest on a fresh store.
func runAll[S any](t *testing.T, newStore func(t *testing.T) S, tests []subtest[S]) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// blob returns n deterministic pseudo-random bytes for seed and their digest.
func blob(seed uint64, n int) ([]byte, digest.Digest) {
	var key [32]byte
	key[0], key[1], key[2], key[3] = byte(seed), byte(seed>>8), byte(seed>>16), byte(seed>>24)
	key[4] = byte(n)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b, digest.FromBytes(b)
}

// put stores b and fails the test on error.
func put(t *testing.T, st store.Store, b []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	if err := st.PutBlob(t.Context(), d, b); err != nil {
		t.Fatalf("PutBlob(%s): %v", d, err)
	}
	return d
}

// mustRead reads d with ReadBlob and Open and checks both against want.
func mustRead(t *testing.T, st store.Store, d digest.Digest, want []byte) {
	t.Helper()
	got, err := st.ReadBlob(t.Context(), d, 0)
	if err != nil {
		t.Fatalf("ReadBlob(%s): %v", d, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ReadBlob(%s): got %d bytes, want %d (content differs)", d, len(got), len(want))
	}
	info, err := st.Stat(t.Context(), d)
	if err != nil {
		t.Fatalf("Stat(%s): %v", d, err)
	}
	if info.Digest != d || info.Size != int64(len(want)) {
		t.Fatalf("Stat(%s) = %+v, want size %d", d, info, len(want))
	}
}

// wantErr fails unless errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// listAll returns ListBlobs' output in call order; ok is false when the
// store cannot list (errors.ErrUnsupported).
func listAll(t *testing.T, st store.Store) (infos []store.Info, ok bool) {
	t.Helper()
	err := st.ListBlobs(t.Context(), func(i store.Info) error {
		infos = append(infos, i)
		return nil
	})
	if errors.Is(err, errors.ErrUnsupported) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("ListBlobs: %v", err)
	}
	return infos, true
}

// skipUnsupported skips the test when err says the store lacks the role.
func skipUnsupported(t *testing.T, what string, err error) {
	t.Helper()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("%s: %v", what, err)
	}
}
