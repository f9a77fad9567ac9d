package convert

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
)

// Compression of the exported layer.
type Compression string

// Compressions Export supports.
const (
	CompressionGzip Compression = "gzip"
	CompressionZstd Compression = "zstd"
	CompressionNone Compression = "none"
)

// ParseCompression checks s ("" means gzip, the most widely accepted).
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case "":
		return CompressionGzip, nil
	case CompressionGzip, CompressionZstd, CompressionNone:
		return c, nil
	}
	return "", fmt.Errorf("unknown compression %q (want gzip, zstd or none)", s)
}

func (c Compression) mediaType() string {
	switch c {
	case CompressionZstd:
		return ocispec.MediaTypeImageLayerZstd
	case CompressionNone:
		return ocispec.MediaTypeImageLayer
	}
	return ocispec.MediaTypeImageLayerGzip
}

// compressor wraps w. Settings are fixed (one goroutine, default levels, no
// names or times in headers) so the same tar gives the same blob.
func (c Compression) compressor(w io.Writer) (io.WriteCloser, error) {
	switch c {
	case CompressionGzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case CompressionZstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	case CompressionNone:
		return nopWriteCloser{w}, nil
	}
	return nil, fmt.Errorf("unknown compression %q", c)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// layerInfo is the written layer.
type layerInfo struct {
	desc   ocispec.Descriptor
	diffID digest.Digest
}

// writeLayer walks img and writes it as one tar layer into the blobs of d.
func writeLayer(ctx context.Context, d *dstLayout, cr *reader.ChunkReader, img *reader.Image,
	c Compression, progress func(ExportProgress)) (li layerInfo, err error) {
	f, err := d.tempBlob()
	if err != nil {
		return li, err
	}
	committed := false
	defer func() {
		f.Close()
		if !committed {
			removeQuiet(f.Name())
		}
	}()
	blobHash := &countingHash{h: sha256.New()}
	bw := bufio.NewWriterSize(io.MultiWriter(f, blobHash), 1<<20)
	zw, err := c.compressor(bw)
	if err != nil {
		return li, err
	}
	diffHash := &countingHash{h: sha256.New()}
	tw := tar.NewWriter(io.MultiWriter(zw, diffHash))
	var entries int64
	// Hardlink entries carry no metadata of their own (SPEC §4.2), but tar
	// extractors (containerd, BuildKit) apply a TypeLink header's mode,
	// owner and times to the shared inode: give them the target's.
	inodes := map[string]format.Entry{}
	err = reader.Walk(ctx, cr, img.Root, reader.DefaultLimits, func(p string, e *format.Entry) error {
		switch e.Type {
		case format.TypeReg:
			meta := *e
			meta.Extents = nil
			inodes[p] = meta
		case format.TypeHardlink:
			meta, ok := inodes[e.Target]
			if !ok {
				return fmt.Errorf("exporting %q: hardlink target %q not seen", p, e.Target)
			}
			meta.Name, meta.Type, meta.Target, meta.Size = e.Name, format.TypeHardlink, e.Target, 0
			e = &meta
		}
		if err := writeEntry(ctx, tw, cr, p, e); err != nil {
			return fmt.Errorf("exporting %q: %w", p, err)
		}
		entries++
		if progress != nil {
			progress(ExportProgress{Entries: entries, Bytes: diffHash.n})
		}
		return nil
	})
	if err != nil {
		return li, err
	}
	if err := tw.Close(); err != nil {
		return li, err
	}
	if err := zw.Close(); err != nil {
		return li, err
	}
	if err := bw.Flush(); err != nil {
		return li, err
	}
	li.diffID = digest.NewDigest(digest.SHA256, diffHash.h)
	li.desc = ocispec.Descriptor{
		MediaType: c.mediaType(),
		Digest:    digest.NewDigest(digest.SHA256, blobHash.h),
		Size:      blobHash.n,
	}
	if err := d.commitBlob(f, li.desc.Digest); err != nil {
		return li, err
	}
	committed = true
	return li, nil
}

// tarHeader returns the header for an entry at slash path p ("" is the root,
// written as "./" so its metadata survives). Access and change times and
// user/group names are never set, and the PAX format is fixed, so the same
// tree always gives the same bytes.
func tarHeader(p string, e *format.Entry) (*tar.Header, error) {
	hdr := &tar.Header{
		Name:    p,
		Mode:    int64(e.Mode),
		Uid:     int(e.UID),
		Gid:     int(e.GID),
		ModTime: time.Unix(e.MtimeSec, int64(e.MtimeNsec)),
		Format:  tar.FormatPAX,
	}
	switch e.Type {
	case format.TypeDir:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		if p == "" {
			hdr.Name = "./"
		}
	case format.TypeReg:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = int64(e.Size)
	case format.TypeSymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Target
	case format.TypeHardlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeLink, e.Target
	case format.TypeChar, format.TypeBlock:
		hdr.Typeflag = tar.TypeChar
		if e.Type == format.TypeBlock {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(e.DevMajor), int64(e.DevMinor)
	case format.TypeFifo:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil, fmt.Errorf("unknown entry type %d", e.Type)
	}
	for _, x := range e.Xattrs {
		if strings.ContainsRune(x.Name, '=') {
			return nil, fmt.Errorf("xattr %q: '=' cannot be written in a PAX record", x.Name)
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[paxXattr+x.Name] = string(x.Value)
	}
	return hdr, nil
}

func writeEntry(ctx context.Context, tw *tar.Writer, cr *reader.ChunkReader, p string, e *format.Entry) error {
	hdr, err := tarHeader(p, e)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if e.Type != format.TypeReg {
		return nil
	}
	for _, x := range e.Extents {
		if x.Zero {
			if _, err := io.CopyN(tw, zeroReader{}, int64(x.Length)); err != nil {
				return err
			}
			continue
		}
		b, err := cr.ReadChunk(ctx, x.Chunk)
		if err != nil {
			return err
		}
		if uint64(len(b)) != x.Length {
			return fmt.Errorf("chunk %s: %d bytes, extent says %d", x.Chunk, len(b), x.Length)
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
