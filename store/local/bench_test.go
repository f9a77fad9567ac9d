package local

import (
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BenchmarkPutBlob measures durable blob writes (hash, write, two fsyncs).
func BenchmarkPutBlob(b *testing.B) {
	for _, size := range []int{16 << 10, 4 << 20} {
		b.Run(fmt.Sprint(size>>10, "KiB"), func(b *testing.B) {
			st, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			data := make([]byte, size)
			b.SetBytes(int64(size))
			for i := 0; b.Loop(); i++ {
				copy(data, fmt.Sprint(i))
				if err := st.PutBlob(ctx, digest.FromBytes(data), data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSetRef measures one index.json update (lock, rewrite, two fsyncs).
func BenchmarkSetRef(b *testing.B) {
	st, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	data := []byte("x")
	d := digest.FromBytes(data)
	if err := st.PutBlob(ctx, d, data); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		if err := st.SetRef(ctx, fmt.Sprint("r", i%50), ocispec.Descriptor{Digest: d, Size: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
