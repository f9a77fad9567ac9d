package framesource_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/image/convert"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/internal/imagetest"
	"github.com/oci2/oci2/store/framesource"
	"github.com/oci2/oci2/store/local"
	"github.com/oci2/oci2/store/memstore"
)

// tree is a directory of files named by index: the derived tree inserts a
// new file after every base file.
func tree(n int, derived bool) (*writer.Node, map[string][]byte) {
	root := imagetest.Dir("", 1600000000)
	want := map[string][]byte{}
	for i := 0; i < n; i++ {
		names := []string{fmt.Sprintf("f%04da", i)}
		if derived {
			names = append(names, fmt.Sprintf("f%04db", i))
		}
		for k, name := range names {
			b := imagetest.Text(int64(i+k*100000), 1<<10+i*41%(24<<10))
			want[name] = b
			root.Children = append(root.Children, imagetest.File(name, 1600000000, b))
		}
	}
	return root, want
}

func write(t *testing.T, st writer.Store, name string, root *writer.Node) ocispec.Descriptor {
	t.Helper()
	res, _ := imagetest.Tag(t, st, name, root, writer.Options{})
	return res.Manifest
}

// derivedStore holds a base image and a derived one with virtual frames.
func derivedStore(t *testing.T) (*local.Store, *reader.Image, map[string][]byte) {
	t.Helper()
	st, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base, _ := tree(200, false)
	write(t, st, "base", base)
	derived, want := tree(200, true)
	m := write(t, st, "derived", derived)
	img, err := reader.Open(context.Background(), st, m)
	if err != nil {
		t.Fatal(err)
	}
	return st, img, want
}

// TestPacksOfVirtualFrames: packs rebuilt from a Source (as push and the
// writer's pack hashing do) have their canonical digests.
func TestPacksOfVirtualFrames(t *testing.T) {
	ctx := context.Background()
	st, img, _ := derivedStore(t)
	src := framesource.New(st, nil)
	virtual := 0
	for _, packs := range [][]reader.Pack{img.TreePacks, img.DataPacks} {
		for i := range packs {
			p := &packs[i]
			for j := range p.Index.Frames {
				v, err := src.Virtual(ctx, p, j)
				if err != nil {
					t.Fatal(err)
				}
				if v {
					virtual++
				}
			}
			h := sha256.New()
			if err := pack.WritePack(ctx, h, p.Index, src.StoredFrame); err != nil {
				t.Fatal(err)
			}
			if got := digest.NewDigest(digest.SHA256, h); got != p.Descriptor.Digest {
				t.Errorf("pack %s rebuilt as %s", p.Descriptor.Digest, got)
			}
		}
	}
	if virtual == 0 {
		t.Fatal("no virtual frame")
	}
}

// TestReadVirtualFrames: a ChunkReader over a Source reads every file of an
// image with virtual frames.
func TestReadVirtualFrames(t *testing.T) {
	ctx := context.Background()
	st, img, want := derivedStore(t)
	cr := reader.NewChunkReader(img, framesource.New(st, nil))
	n := 0
	err := reader.Walk(ctx, cr, img.Root, reader.Limits{}, func(p string, e *format.Entry) error {
		if e.Type != format.TypeReg {
			return nil
		}
		if !bytes.Equal(readertest.Content(t, cr, e), want[e.Name]) {
			return fmt.Errorf("%s: wrong bytes", p)
		}
		n++
		return nil
	})
	if err != nil || n != len(want) {
		t.Fatalf("read %d of %d files: %v", n, len(want), err)
	}
}

// TestExportVirtualFrames: export reads an image with virtual frames to the
// same layer as the image written into a store of its own.
func TestExportVirtualFrames(t *testing.T) {
	ctx := context.Background()
	st, _, _ := derivedStore(t)
	got, err := convert.Export(ctx, st, "derived", "oci:"+filepath.Join(t.TempDir(), "a"), convert.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	alone := memstore.New()
	derived, _ := tree(200, true)
	write(t, alone, "derived", derived)
	want, err := convert.Export(ctx, alone, "derived", "oci:"+filepath.Join(t.TempDir(), "b"), convert.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Source.Digest != want.Source.Digest || got.DiffID != want.DiffID || got.Layer.Digest != want.Layer.Digest {
		t.Errorf("export: %s %s, written alone %s %s", got.Source.Digest, got.DiffID, want.Source.Digest, want.DiffID)
	}
}
