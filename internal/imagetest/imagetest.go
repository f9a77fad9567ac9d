package imagetest

import (
	"bytes"
	"context"
	"io"
	"math/rand"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
)

// Bytes is a file's content held in memory.
type Bytes []byte

// Open returns a reader of b.
func (b Bytes) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }

// Text returns n bytes of seeded pseudo-text (words of 2 to 9 letters), which
// compresses about like source files do.
func Text(seed int64, n int) []byte {
	r := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	for b.Len() < n {
		for i := 2 + r.Intn(8); i > 0; i-- {
			b.WriteByte(byte('a' + r.Intn(20)))
		}
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

// Random returns n seeded pseudo-random (incompressible) bytes.
func Random(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// Pseudo returns n reproducible, poorly compressible bytes (xorshift32,
// fast enough for tests that write megabytes).
func Pseudo(seed byte, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// Dir is a directory entry (mode 0755) holding kids.
func Dir(name string, mtime int64, kids ...*writer.Node) *writer.Node {
	return &writer.Node{Entry: format.Entry{Name: name, Type: format.TypeDir, Mode: 0o755, MtimeSec: mtime}, Children: kids}
}

// File is a regular file (mode 0644) holding data.
func File(name string, mtime int64, data []byte) *writer.Node {
	return &writer.Node{
		Entry:   format.Entry{Name: name, Type: format.TypeReg, Mode: 0o644, MtimeSec: mtime, Size: uint64(len(data))},
		Content: Bytes(data),
	}
}

// Tree is a root directory of files named "ddd/name": three-letter
// directories of regular files, all with the given mtime. The writer sorts
// the children, so the map's order does not matter.
func Tree(files map[string][]byte, mtime int64) *writer.Node {
	root := Dir("", mtime)
	dirs := map[string]*writer.Node{}
	for p, b := range files {
		d, name := p[:3], p[4:]
		if dirs[d] == nil {
			dirs[d] = Dir(d, mtime)
			root.Children = append(root.Children, dirs[d])
		}
		dirs[d].Children = append(dirs[d].Children, File(name, mtime, b))
	}
	return root
}

// Platform is the config Tag gives an image whose Options have none.
var Platform = ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}

// Tag writes root through writer.Write with opts (a zero Config becomes
// Platform), writes an image index of the manifest, names it ref unless
// ref is empty, and returns the write's result and the index descriptor.
func Tag(t testing.TB, st writer.Store, ref string, root *writer.Node, opts writer.Options) (*writer.Result, ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	if opts.Config.OS == "" {
		opts.Config = Platform
	}
	res, err := writer.Write(ctx, st, root, opts)
	if err != nil {
		t.Fatalf("writing %s: %v", ref, err)
	}
	desc, err := writer.WriteIndex(ctx, st, []ocispec.Descriptor{res.Manifest}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ref != "" {
		if err := st.SetRef(ctx, ref, desc); err != nil {
			t.Fatal(err)
		}
	}
	return res, desc
}
