package writertest

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Generate writes a tree of about total bytes under dir (which must exist):
// directories of a few dozen files, mostly small text-like files plus some
// medium and a few large ones, compressible about 3:1, reproducible from
// seed. It returns the number of files and bytes written.
func Generate(dir string, seed uint64, total int64) (files int, bytes int64, err error) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	words := dictionary(r)
	for d := 0; bytes < total; d++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", d/20), fmt.Sprintf("s%03d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return files, bytes, err
		}
		for i := 0; i < 40 && bytes < total; i++ {
			size := fileSize(r)
			if size > total-bytes {
				size = total - bytes
			}
			p := filepath.Join(sub, fmt.Sprintf("f%03d.txt", i))
			if err := writeText(p, r, words, size); err != nil {
				return files, bytes, err
			}
			files++
			bytes += size
		}
	}
	return files, bytes, nil
}

// fileSize draws from a container-like mix: 70% under 16 KiB, 25% up to
// 512 KiB, 5% between 1 and 8 MiB.
func fileSize(r *rand.Rand) int64 {
	switch x := r.IntN(100); {
	case x < 70:
		return 100 + r.Int64N(16<<10)
	case x < 95:
		return 16<<10 + r.Int64N(496<<10)
	default:
		return 1<<20 + r.Int64N(7<<20)
	}
}

func dictionary(r *rand.Rand) [][]byte {
	words := make([][]byte, 4096)
	for i := range words {
		w := make([]byte, 2+r.IntN(9))
		for j := range w {
			w[j] = byte('a' + r.IntN(26))
		}
		words[i] = w
	}
	return words
}

func writeText(path string, r *rand.Rand, words [][]byte, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	for n := int64(0); n < size; {
		word := words[r.IntN(len(words))]
		if int64(len(word))+1 > size-n {
			word = word[:size-n-1]
		}
		w.Write(word)
		sep := byte(' ')
		if r.IntN(12) == 0 {
			sep = '\n'
		}
		w.WriteByte(sep)
		n += int64(len(word)) + 1
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
