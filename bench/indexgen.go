package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/local"
)

// A synthetic store holds millions of chunks without gigabytes of data:
// images of many tiny unique files, each file one chunk (SPEC.md §3). It is
// written through the library, as `oci2 create` would write it, with the
// store's index files; the marker file records its chunk count so a later
// run reuses it.
const synthMarker = "oci2-bench-synthetic"

const (
	synthFilesPerImage = 50_000
	synthFileSize      = 96
)

type memContent []byte

func (m memContent) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(m)), nil }

// synthStore returns a store of dir holding at least chunks chunks,
// generating (or completing) it when needed.
func synthStore(ctx context.Context, dir string, chunks int, logf func(string, ...any)) error {
	have := 0
	if b, err := os.ReadFile(filepath.Join(dir, synthMarker)); err == nil {
		have, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if have >= chunks {
		return nil
	}
	st, err := local.Open(dir)
	if err != nil {
		return err
	}
	for img := have / synthFilesPerImage; have < chunks; img++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := synthImage(ctx, st, img); err != nil {
			return fmt.Errorf("synthetic image %d: %w", img, err)
		}
		have += synthFilesPerImage
		if err := os.WriteFile(filepath.Join(dir, synthMarker), []byte(strconv.Itoa(have)), 0o644); err != nil {
			return err
		}
		logf("index bench: synthetic store: %d chunks", have)
	}
	return nil
}

// synthImage writes image number n: synthFilesPerImage unique files of
// synthFileSize bytes in directories of 500.
func synthImage(ctx context.Context, st *local.Store, n int) error {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	root := &writer.Node{Entry: format.Entry{Type: format.TypeDir, Mode: 0o755}}
	var dir *writer.Node
	for i := 0; i < synthFilesPerImage; i++ {
		if i%500 == 0 {
			dir = &writer.Node{Entry: format.Entry{Name: fmt.Sprintf("d%03d", i/500), Type: format.TypeDir, Mode: 0o755}}
			root.Children = append(root.Children, dir)
		}
		b := make([]byte, synthFileSize)
		for j := 0; j+8 <= len(b); j += 8 {
			binary.LittleEndian.PutUint64(b[j:], rng.Uint64())
		}
		dir.Children = append(dir.Children, &writer.Node{
			Entry:   format.Entry{Name: fmt.Sprintf("f%05d", i), Type: format.TypeReg, Mode: 0o644, Size: synthFileSize},
			Content: memContent(b),
		})
	}
	release, err := st.Lease(ctx)
	if err != nil {
		return err
	}
	defer release()
	idx, err := index.New(ctx, st)
	if err != nil {
		return err
	}
	defer idx.Close()
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}
	res, err := writer.Write(ctx, st, root, writer.Options{Config: cfg, FrameIndex: idx})
	if err != nil {
		return err
	}
	desc, err := writer.WriteIndex(ctx, st, []ocispec.Descriptor{res.Manifest}, nil)
	if err != nil {
		return err
	}
	return st.SetRef(ctx, fmt.Sprintf("bench.local/synthetic:%d", n), desc)
}
