package unpack_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/oci2/oci2/image/unpack"
	wt "github.com/oci2/oci2/image/writer/writertest"
)

// BenchmarkUnpack unpacks a generated 64 MiB tree (container-like file
// sizes, text compressible about 3:1) from a memstore. Set
// OCI2_BENCH_DIR (for instance to a tmpfs) to choose the destination's
// filesystem.
func BenchmarkUnpack(b *testing.B) {
	src := filepath.Join(b.TempDir(), "src")
	os.Mkdir(src, 0o755)
	files, total, err := wt.Generate(src, 1, 64<<20)
	if err != nil {
		b.Fatal(err)
	}
	img, cr := writeImage(b, src)
	base := os.Getenv("OCI2_BENCH_DIR")
	if base == "" {
		base = b.TempDir()
	}
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.SetBytes(total)
			b.ReportMetric(float64(files), "files/op")
			for i := 0; b.Loop(); i++ {
				dest := filepath.Join(base, fmt.Sprintf("bench-%d-%d", workers, i))
				if _, err := unpack.Unpack(b.Context(), img, cr, dest, unpack.Options{Workers: workers}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(dest)
				b.StartTimer()
			}
		})
	}
}
