package transfer_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/admin"
	"github.com/oci2/oci2/store/local"
	"github.com/oci2/oci2/store/registry"
	"github.com/oci2/oci2/transfer"
)

// files is an image's content: slash path -> bytes.
type files map[string][]byte

type mem []byte

func (m mem) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(m)), nil }

// random returns n reproducible incompressible bytes.
func random(seed uint64, n int) []byte {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// v1Files is about 36 MiB in 48 files: several packs.
func v1Files() files {
	fs := files{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 48 {
		fs[fmt.Sprintf("d%02d/f%03d", i/8, i)] = random(uint64(1000+i), 100<<10+r.IntN(1400<<10))
	}
	fs["etc/config"] = []byte("v1\n")
	return fs
}

// v2Files is v1 plus about 5 MiB of new files at the end of the data
// stream and one changed config file.
func v2Files() files {
	fs := v1Files()
	for i := range 8 {
		fs[fmt.Sprintf("zz/new%02d", i)] = random(uint64(5000+i), 600<<10)
	}
	fs["etc/config"] = []byte("v2\n")
	return fs
}

// tree builds the writer's node tree of fs.
func tree(fs files) *writer.Node {
	root := &writer.Node{Entry: format.Entry{Type: format.TypeDir, Mode: 0o755, MtimeSec: 1600000000}}
	dirs := map[string]*writer.Node{".": root}
	var mkdir func(p string) *writer.Node
	mkdir = func(p string) *writer.Node {
		if n, ok := dirs[p]; ok {
			return n
		}
		parent := mkdir(path.Dir(p))
		n := &writer.Node{Entry: format.Entry{Name: path.Base(p), Type: format.TypeDir, Mode: 0o755, MtimeSec: 1600000000}}
		parent.Children = append(parent.Children, n)
		dirs[p] = n
		return n
	}
	names := make([]string, 0, len(fs))
	for p := range fs {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		d := mkdir(path.Dir(p))
		d.Children = append(d.Children, &writer.Node{
			Entry:   format.Entry{Name: path.Base(p), Type: format.TypeReg, Mode: 0o644, MtimeSec: 1600000000, Size: uint64(len(fs[p]))},
			Content: mem(fs[p]),
		})
	}
	return root
}

// newStore opens an empty local store.
func newStore(t testing.TB) *local.Store {
	t.Helper()
	st, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// create writes fs as an image named name into st and returns the index.
func create(t testing.TB, st *local.Store, name string, fs files) ocispec.Descriptor {
	t.Helper()
	ctx := t.Context()
	res, err := writer.Write(ctx, st, tree(fs), writer.Options{
		Config: ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}},
	})
	if err != nil {
		t.Fatalf("writing image: %v", err)
	}
	desc, err := writer.WriteIndex(ctx, st, []ocispec.Descriptor{res.Manifest}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetRef(ctx, name, desc); err != nil {
		t.Fatal(err)
	}
	return desc
}

// fastRetries keeps fault tests quick.
func fastRetries(o registry.Options) registry.Options {
	o.MinBackoff, o.MaxBackoff = time.Millisecond, 10*time.Millisecond
	return o
}

// warnings collects warnings.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, s)
}

func (w *warnings) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.msgs, "\n")
}

func opts(w *warnings) transfer.Options {
	o := transfer.Options{Registry: fastRetries(registry.Options{})}
	if w != nil {
		o.Warn = w.add
	}
	return o
}

// mustCheck runs admin.Check with data verification on st.
func mustCheck(t testing.TB, st *local.Store) {
	t.Helper()
	rep, err := admin.Check(t.Context(), st, admin.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("check found problems: %v", rep.Problems)
	}
}

// imageBlobs returns the blobs (config, pack indexes, packs) of the single
// manifest of index desc in st, and its frames.
func imageBlobs(t testing.TB, st *local.Store, idx ocispec.Descriptor) (blobs map[digest.Digest]int64, frames map[format.ChunkID]uint64) {
	t.Helper()
	ctx := t.Context()
	m, err := reader.Resolve(ctx, st, st, idx.Digest.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err := reader.Open(ctx, st, m)
	if err != nil {
		t.Fatal(err)
	}
	blobs = map[digest.Digest]int64{img.Manifest.Config.Digest: img.Manifest.Config.Size}
	frames = map[format.ChunkID]uint64{}
	for _, l := range img.Manifest.Layers {
		blobs[l.Digest] = l.Size
	}
	for _, list := range [][]reader.Pack{img.TreePacks, img.DataPacks} {
		for _, p := range list {
			for _, f := range p.Index.Frames {
				frames[f.Digest] = f.StoredSize
			}
		}
	}
	return blobs, frames
}

type (
	storeT = *local.Store
	descT  = ocispec.Descriptor
)

var _ = context.Background
