package writer_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/chunking"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/memstore"
)

func splitBytes(t testing.TB, b []byte) []format.Extent {
	t.Helper()
	var ext []format.Extent
	if err := chunking.NewSplitter().Split(bytes.NewReader(b), int64(len(b)), func(e format.Extent, _ []byte) error {
		ext = append(ext, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ext
}

// TestWriteCandidates: a candidate that matches the file's bytes is used
// (counted as verified, same image as chunking gives), one that does not
// is ignored and the file chunked.
func TestWriteCandidates(t *testing.T) {
	d := t.TempDir()
	zeros := slices.Concat(pseudo(1, 40000), make([]byte, 200<<10), pseudo(2, 9000))
	files := map[string][]byte{"same": pseudo(3, 300<<10), "zeros": zeros, "changed": pseudo(4, 120<<10), "small": pseudo(5, 900)}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(d, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write := func(cands map[string][]format.Extent) (*writer.Result, map[string][]format.Extent) {
		root, err := writer.FromDir(context.Background(), d, writer.DirOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range root.Children {
			n.Candidate = cands[n.Name]
		}
		got := map[string][]format.Extent{}
		res, err := writer.Write(context.Background(), memstore.New(), root, writer.Options{
			Config:  ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}},
			Extents: func(n *writer.Node, ext []format.Extent) { got[n.Name] = ext },
		})
		if err != nil {
			t.Fatal(err)
		}
		return res, got
	}
	plain, want := write(nil)
	stale := slices.Clone(files["changed"])
	stale[len(stale)/2] ^= 0xff
	res, got := write(map[string][]format.Extent{
		"same": splitBytes(t, files["same"]), "zeros": splitBytes(t, zeros), "small": splitBytes(t, files["small"]),
		"changed": splitBytes(t, stale),
	})
	if res.Manifest.Digest != plain.Manifest.Digest {
		t.Errorf("manifest %s with candidates, %s without", res.Manifest.Digest, plain.Manifest.Digest)
	}
	for name := range files {
		if !slices.Equal(got[name], want[name]) {
			t.Errorf("%s: extents %v, want %v", name, got[name], want[name])
		}
	}
	wantBytes := int64(len(files["same"]) + len(zeros) + len(files["small"]))
	if res.Stats.FilesVerified != 3 || res.Stats.BytesVerified != wantBytes || plain.Stats.FilesVerified != 0 {
		t.Errorf("verified %d files (%d bytes), want 3 (%d)", res.Stats.FilesVerified, res.Stats.BytesVerified, wantBytes)
	}
	// A candidate of another size is not even tried.
	res, _ = write(map[string][]format.Extent{"same": splitBytes(t, files["same"][1:])})
	if res.Stats.FilesVerified != 0 {
		t.Errorf("a candidate of another size was used")
	}
}

// BenchmarkVerifyVsSplit: checking a candidate against chunking afresh.
func BenchmarkVerifyVsSplit(b *testing.B) {
	d := b.TempDir()
	var total int64
	cands := map[string][]format.Extent{}
	for i := range 32 {
		name := fmt.Sprintf("f%02d", i)
		data := pseudo(byte(i), 1<<20+i*4096)
		os.WriteFile(filepath.Join(d, name), data, 0o644)
		cands[name] = splitBytes(b, data)
		total += int64(len(data))
	}
	for _, mode := range []string{"verify", "split"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				root, err := writer.FromDir(context.Background(), d, writer.DirOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if mode == "verify" {
					for _, n := range root.Children {
						n.Candidate = cands[n.Name]
					}
				}
				if _, err := writer.Write(context.Background(), memstore.New(), root, writer.Options{
					Config: ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
