package convert

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/store"
)

// Layer media types Import accepts. The compression is detected from the
// stream's magic bytes (Docker has written uncompressed layers under a gzip
// media type); the media type only has to be a tar layer.
var layerMediaTypes = map[string]bool{
	ocispec.MediaTypeImageLayer:                                 true,
	ocispec.MediaTypeImageLayerGzip:                             true,
	ocispec.MediaTypeImageLayerZstd:                             true,
	ocispec.MediaTypeImageLayerNonDistributable:                 true, //nolint:staticcheck // still in use
	ocispec.MediaTypeImageLayerNonDistributableGzip:             true, //nolint:staticcheck
	ocispec.MediaTypeImageLayerNonDistributableZstd:             true, //nolint:staticcheck
	"application/vnd.docker.image.rootfs.diff.tar":              true,
	"application/vnd.docker.image.rootfs.diff.tar.gzip":         true,
	"application/vnd.docker.image.rootfs.diff.tar.zstd":         true,
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": true,
}

// ErrDiffIDMismatch reports a layer whose uncompressed content does not hash
// to the config's rootfs.diff_ids entry.
var ErrDiffIDMismatch = errors.New("diff_id mismatch")

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// countingHash hashes and counts what passes through it.
type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// decompress returns the uncompressed stream of br, by magic bytes.
func decompress(br *bufio.Reader) (io.ReadCloser, error) {
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("opening gzip stream: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("opening zstd stream: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// applyLayer streams layer i into t, checking the blob digest and the
// uncompressed digest (diffID). When the layer fails to parse, the blob is
// still read to its end so that a corrupted blob is reported as such.
func applyLayer(ctx context.Context, l srcLayout, t *fsTree, i int, desc ocispec.Descriptor, diffID digest.Digest, progress func(n int64)) error {
	wrap := func(err error) error {
		return fmt.Errorf("layer %d (%s): %w", i+1, desc.Digest, err)
	}
	if !layerMediaTypes[desc.MediaType] {
		return wrap(fmt.Errorf("unsupported layer media type %q", desc.MediaType))
	}
	if err := desc.Digest.Validate(); err != nil {
		return wrap(err)
	}
	if err := diffID.Validate(); err != nil {
		return wrap(fmt.Errorf("config diff_id %q: %w", diffID, err))
	}
	rc, size, err := l.blob(desc.Digest)
	if err != nil {
		if len(desc.URLs) > 0 {
			err = fmt.Errorf("foreign layer not in the layout: %w", err)
		}
		return wrap(err)
	}
	defer rc.Close()
	if size != desc.Size {
		return wrap(fmt.Errorf("stored size %d, descriptor says %d: %w", size, desc.Size, store.ErrSizeMismatch))
	}
	raw := &countingHash{h: desc.Digest.Algorithm().Hash()}
	src := &progressReader{r: io.TeeReader(io.LimitReader(rc, size), raw), fn: progress}
	br := bufio.NewReaderSize(src, 1<<20)

	t.layer = i + 1
	diff := &countingHash{h: diffID.Algorithm().Hash()}
	perr := readLayerTar(ctx, br, diff, t)
	if perr != nil && ctx.Err() != nil {
		return wrap(ctx.Err())
	}
	// Read what is left so the blob digest covers every byte.
	if _, err := io.Copy(io.Discard, br); err != nil && perr == nil {
		perr = err
	}
	if raw.n != desc.Size {
		return wrap(fmt.Errorf("read %d bytes, want %d: %w", raw.n, desc.Size, store.ErrSizeMismatch))
	}
	if got := digest.NewDigest(desc.Digest.Algorithm(), raw.h); got != desc.Digest {
		return wrap(fmt.Errorf("content hashes to %s: %w", got, store.ErrDigestMismatch))
	}
	if perr != nil {
		return wrap(perr)
	}
	if got := digest.NewDigest(diffID.Algorithm(), diff.h); got != diffID {
		return wrap(fmt.Errorf("uncompressed content hashes to %s, config rootfs.diff_ids says %s: %w", got, diffID, ErrDiffIDMismatch))
	}
	return nil
}

// readLayerTar decompresses br, hashing the uncompressed bytes into diff,
// and applies every tar entry to t.
func readLayerTar(ctx context.Context, br *bufio.Reader, diff io.Writer, t *fsTree) error {
	dec, err := decompress(br)
	if err != nil {
		return err
	}
	defer dec.Close()
	ur := io.TeeReader(dec, diff)
	tr := tar.NewReader(ur)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		if err := t.apply(hdr, tr); err != nil {
			return err
		}
	}
	// The diff_id covers the whole uncompressed stream, including the
	// padding after the end-of-archive blocks.
	if _, err := io.Copy(io.Discard, ur); err != nil {
		return fmt.Errorf("reading layer: %w", err)
	}
	return nil
}

// progressReader reports the bytes read so far.
type progressReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.fn != nil && n > 0 {
		p.fn(p.n)
	}
	return n, err
}
