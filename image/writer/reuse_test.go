package writer_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
)

func TestSecondWriteReusesFrames(t *testing.T) {
	e := newEnv(t)
	first := e.write(goldenTree(), writer.Options{Config: testConfig})
	if first.Stats.FramesNew == 0 || first.Stats.FramesNew != first.Stats.Frames {
		t.Errorf("first write: %d new of %d frames", first.Stats.FramesNew, first.Stats.Frames)
	}
	second := e.write(goldenTree(), writer.Options{Config: testConfig})
	if second.Stats.FramesNew != 0 || second.Stats.StoredNew != 0 {
		t.Errorf("second write: %d new frames, %d new bytes", second.Stats.FramesNew, second.Stats.StoredNew)
	}
	if second.Manifest.Digest != first.Manifest.Digest {
		t.Errorf("second write %s, first %s", second.Manifest.Digest, first.Manifest.Digest)
	}
}

func TestStoreContentDoesNotChangeDigest(t *testing.T) {
	want := newEnv(t).write(goldenTree(), writer.Options{Config: testConfig}).Manifest.Digest

	// A store holding an overlapping image (one file more, one changed) and
	// an unrelated one, tagged so a fresh index sees them.
	e := newEnv(t)
	other := goldenTree()
	other.Children = append(other.Children, file("extra", 0o644, pseudo(9, 300<<10)))
	other.Children[0] = file("a", 0o644, []byte("bar\n"))
	r1 := e.write(other, writer.Options{Config: testConfig})
	r2 := e.write(dir("", 0o755, file("x", 0o644, pseudo(3, 1<<20))), writer.Options{Config: testConfig})
	for i, r := range []*writer.Result{r1, r2} {
		if err := e.st.SetRef(e.ctx, "example.com/other:"+string(rune('a'+i)), r.Manifest); err != nil {
			t.Fatal(err)
		}
	}
	res := e.write(goldenTree(), writer.Options{Config: testConfig})
	if res.Manifest.Digest != want {
		t.Errorf("with other images in the store: %s, want %s", res.Manifest.Digest, want)
	}
	if res.Stats.FramesNew == res.Stats.Frames {
		t.Errorf("no frame reused from the overlapping image")
	}
}

func TestKnownExtentsFetchedFromContent(t *testing.T) {
	// A node with extents but a store without its frames: the writer reads
	// the bytes from Content and gives the same image as from scratch.
	data := pseudo(4, 700<<10)
	want := newEnv(t).write(dir("", 0o755, file("f", 0o644, data)), writer.Options{Config: testConfig})
	src := newEnv(t)
	exts := src.entries(src.write(dir("", 0o755, file("f", 0o644, data)), writer.Options{Config: testConfig}).Root)["f"].Extents

	n := file("f", 0o644, data)
	n.Extents = exts
	e := newEnv(t)
	if res := e.write(dir("", 0o755, n), writer.Options{Config: testConfig}); res.Manifest.Digest != want.Manifest.Digest {
		t.Errorf("known extents: %s, want %s", res.Manifest.Digest, want.Manifest.Digest)
	}
	// Without content, and frames missing: a clear error.
	n.Content = nil
	_, err := writer.Write(context.Background(), newEnv(t).st, dir("", 0o755, n), writer.Options{Config: testConfig})
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing chunks without content: err = %v", err)
	}
}

// TestNoBlobReadOrPutTwice: a first write puts each blob once and reads no
// frame back (pack digests are hashed as frames are made).
func TestNoBlobReadOrPutTwice(t *testing.T) {
	st := newCountingStore()
	root := goldenTree()
	root.Children = append(root.Children, file("huge", 0o644, pseudo(11, 36<<20))) // several packs
	res, err := writer.Write(context.Background(), st, root, writer.Options{Config: testConfig})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Packs < 3 {
		t.Errorf("%d packs, want several data packs", res.Stats.Packs)
	}
	for d, n := range st.puts {
		if n != 1 {
			t.Errorf("blob %s put %d times", d, n)
		}
	}
	if len(st.reads) != 0 {
		t.Errorf("blobs read during a first write: %v", st.reads)
	}
}

func TestKnownExtentsFetchedFromStore(t *testing.T) {
	// Known extents without content next to new files: frames that mix old
	// and new chunks are made with old bytes read back from the store.
	a, b := pseudo(5, 100<<10), []byte("new small file")
	want := newEnv(t).write(dir("", 0o755, file("a", 0o644, a), file("b", 0o644, b)), writer.Options{Config: testConfig})

	e := newEnv(t)
	first := e.write(dir("", 0o755, file("a", 0o644, a)), writer.Options{Config: testConfig})
	n := file("a", 0o644, nil)
	n.Size = uint64(len(a))
	n.Content = nil
	n.Extents = e.entries(first.Root)["a"].Extents
	res := e.write(dir("", 0o755, n, file("b", 0o644, b)), writer.Options{Config: testConfig})
	if res.Manifest.Digest != want.Manifest.Digest {
		t.Errorf("known extents: %s, want %s", res.Manifest.Digest, want.Manifest.Digest)
	}
	if f := dataFrameOf(t, e, res, format.Sum(b)); len(f.Chunks) < 2 {
		t.Errorf("b's frame has %d chunks: the test does not mix old and new chunks", len(f.Chunks))
	}
}

// dataFrameOf finds the frame holding chunk id in an image's data packs.
func dataFrameOf(t *testing.T, e *env, res *writer.Result, id format.ChunkID) format.Frame {
	t.Helper()
	var m ocispec.Manifest
	b, _ := e.st.ReadBlob(e.ctx, res.Manifest.Digest, 0)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		if l.MediaType != format.MediaTypePackIndex {
			continue
		}
		b, _ := e.st.ReadBlob(e.ctx, l.Digest, 0)
		pi, err := format.DecodePackIndex(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range pi.Frames {
			for _, c := range f.Chunks {
				if c.ID == id {
					return f
				}
			}
		}
	}
	t.Fatalf("chunk %s in no frame", id)
	return format.Frame{}
}
