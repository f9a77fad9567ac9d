package unpack_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oci2/oci2/image/unpack"
	"github.com/oci2/oci2/image/unpack/unpacktest"
)

// BenchmarkUnpackCorpus unpacks a real root filesystem: set
// OCI2_BENCH_ROOTFS (for instance /work/corpus/node-app-v2) and optionally
// OCI2_BENCH_DIR. The first iteration is also compared with the source.
func BenchmarkUnpackCorpus(b *testing.B) {
	src := os.Getenv("OCI2_BENCH_ROOTFS")
	if src == "" {
		b.Skip("OCI2_BENCH_ROOTFS not set")
	}
	img, cr := writeImage(b, src)
	base := os.Getenv("OCI2_BENCH_DIR")
	if base == "" {
		base = b.TempDir()
	}
	want, err := unpacktest.Take(src)
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for _, e := range want {
		bytes += e.Size
	}
	b.SetBytes(bytes)
	checked := false
	for b.Loop() {
		dest := filepath.Join(base, "bench-corpus")
		if _, err := unpack.Unpack(b.Context(), img, cr, dest, unpack.Options{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if !checked {
			got, err := unpacktest.Take(dest)
			if err != nil {
				b.Fatal(err)
			}
			if d := unpacktest.Diff(want, got, unpacktest.Options{Blocks: true}); len(d) > 0 {
				b.Fatalf("unpacked corpus differs (%d):\n%s", len(d), strings.Join(d[:min(len(d), 20)], "\n"))
			}
			checked = true
		}
		os.RemoveAll(dest)
		b.StartTimer()
	}
}
