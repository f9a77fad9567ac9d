package writer_test

import (
	"context"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oci2/oci2/image/writer"
	wt "github.com/oci2/oci2/image/writer/writertest"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/memstore"
)

var (
	benchOnce  sync.Once
	benchDir   string
	benchBytes int64
)

// benchTree generates ~100 MB once per process. OCI2_BENCH_DIR names a
// tree to use instead (a corpus tree); an empty or missing one is filled
// with the generated tree and kept for later runs.
func benchTree(b *testing.B) (string, int64) {
	benchOnce.Do(func() {
		benchDir = os.Getenv("OCI2_BENCH_DIR")
		if benchDir == "" {
			d, err := os.MkdirTemp("", "oci2-bench")
			if err != nil {
				b.Fatal(err)
			}
			benchDir = d
		} else if err := os.MkdirAll(benchDir, 0o755); err != nil {
			b.Fatal(err)
		}
		if des, err := os.ReadDir(benchDir); err == nil && len(des) > 0 {
			root, err := writer.FromDir(context.Background(), benchDir, writer.DirOptions{})
			if err != nil {
				b.Fatal(err)
			}
			benchBytes = logical(root)
			return
		}
		_, n, err := wt.Generate(benchDir, 1, 100<<20)
		if err != nil {
			b.Fatal(err)
		}
		benchBytes = n
		time.Sleep(1100 * time.Millisecond) // let the files cache trust the new files
	})
	return benchDir, benchBytes
}

func logical(n *writer.Node) int64 {
	s := int64(n.Size)
	for _, c := range n.Children {
		s += logical(c)
	}
	return s
}

// BenchmarkWriteDir writes a generated ~100 MB tree into a fresh memory
// store (walk, chunk, hash, compress, pack), the files in the page cache.
func BenchmarkWriteDir(b *testing.B) {
	dir, n := benchTree(b)
	ctx := context.Background()
	b.SetBytes(n)
	b.ResetTimer()
	cpu0 := cpuTime()
	var res *writer.Result
	for range b.N {
		st := memstore.New()
		idx, err := index.New(ctx, st)
		if err != nil {
			b.Fatal(err)
		}
		root, err := writer.FromDir(ctx, dir, writer.DirOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if res, err = writer.Write(ctx, st, root, writer.Options{FrameIndex: idx}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.Stats.LogicalBytes)/float64(res.Stats.StoredBytes), "ratio")
	// CPU time per byte is what the machine's load does not change much:
	// MB per CPU-second, times the cores, bounds the throughput.
	b.ReportMetric(float64(n)*float64(b.N)/1e6/(cpuTime()-cpu0).Seconds(), "MB/cpu-s")
}

// cpuTime is the process's user+system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWriteDirAgain writes the tree into a store that already holds
// it, with a files cache: nothing is read or compressed.
func BenchmarkWriteDirAgain(b *testing.B) {
	dir, n := benchTree(b)
	ctx := context.Background()
	st := memstore.New()
	idx, err := index.New(ctx, st)
	if err != nil {
		b.Fatal(err)
	}
	fc := writer.NewStatCache()
	root, err := writer.FromDir(ctx, dir, writer.DirOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := writer.Write(ctx, st, root, writer.Options{FrameIndex: idx, StatCache: fc}); err != nil {
		b.Fatal(err)
	}
	if err := fc.Save(b.TempDir() + "/files"); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(n)
	b.ResetTimer()
	for range b.N {
		root, err := writer.FromDir(ctx, dir, writer.DirOptions{})
		if err != nil {
			b.Fatal(err)
		}
		res, err := writer.Write(ctx, st, root, writer.Options{FrameIndex: idx, StatCache: fc})
		if err != nil {
			b.Fatal(err)
		}
		if res.Stats.FramesNew != 0 {
			b.Fatalf("%d new frames", res.Stats.FramesNew)
		}
	}
}
