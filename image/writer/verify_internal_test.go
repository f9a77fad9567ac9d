package writer

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/internal/testenv"
)

// TestVerifyMappedShrunk: a mapped file cut short under the check is a
// mismatch, not a crash (SIGBUS becomes a recovered fault).
func TestVerifyMappedShrunk(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := make([]byte, 2*mapMin)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := mapFile(f, int64(len(data)))
	if m == nil {
		testenv.Unavailable(t, "mmap refused here")
	}
	defer unix.Munmap(m)
	tail := m[mapMin:]
	if !sumIs(tail, format.Sum(data[mapMin:]), true) {
		t.Fatal("mapped bytes do not hash to the file's")
	}
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	if sumIs(tail, format.Sum(data[mapMin:]), true) {
		t.Error("bytes of a truncated file verified")
	}
}
