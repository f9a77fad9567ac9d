package convert

import (
	"archive/tar"
	_ "crypto/sha512" // sha384 and sha512 blobs in source layouts
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/internal/regfile"
	"github.com/oci2/oci2/store"
)

// Size limits for the JSON documents of a source layout.
const (
	maxIndexJSON  = 16 << 20
	maxConfigJSON = 16 << 20
)

// srcLayout reads an OCI image layout: a directory, or a tar of one read in
// place. Blobs are returned unverified; callers verify.
type srcLayout interface {
	// file opens a top-level file ("index.json", "oci-layout").
	file(name string) (io.ReadCloser, error)
	// blob opens a blob and returns its size.
	blob(d digest.Digest) (io.ReadCloser, int64, error)
	Close() error
}

// openLayout opens loc's layout and checks its oci-layout file.
func openLayout(loc Location) (srcLayout, error) {
	var l srcLayout
	var err error
	switch loc.Transport {
	case TransportOCI:
		l, err = openDirLayout(loc.Path)
	case TransportArchive:
		l, err = openArchiveLayout(loc.Path)
	default:
		err = fmt.Errorf("unknown transport %q", loc.Transport)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", loc, err)
	}
	if err := checkLayoutVersion(l); err != nil {
		l.Close()
		return nil, fmt.Errorf("opening %s: %w", loc, err)
	}
	return l, nil
}

func checkLayoutVersion(l srcLayout) error {
	b, err := readAllFile(l, ocispec.ImageLayoutFile, 1<<20)
	if err != nil {
		return fmt.Errorf("not an OCI image layout: %w", err)
	}
	var v ocispec.ImageLayout
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("parsing %s: %w", ocispec.ImageLayoutFile, err)
	}
	if v.Version != ocispec.ImageLayoutVersion {
		return fmt.Errorf("unsupported image layout version %q", v.Version)
	}
	return nil
}

func readAllFile(l srcLayout, name string, max int64) ([]byte, error) {
	rc, err := l.file(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes: %w", name, max, store.ErrTooLarge)
	}
	return b, nil
}

// readIndex reads and parses index.json.
func readIndex(l srcLayout) (*ocispec.Index, error) {
	b, err := readAllFile(l, ocispec.ImageIndexFile, maxIndexJSON)
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", ocispec.ImageIndexFile, err)
	}
	return &idx, nil
}

// readBlob reads the blob desc names, verifying size and digest.
func readBlob(l srcLayout, desc ocispec.Descriptor, max int64) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", desc.Digest, err)
	}
	if desc.Size < 0 || desc.Size > max {
		return nil, fmt.Errorf("blob %s: size %d out of range (max %d): %w", desc.Digest, desc.Size, max, store.ErrTooLarge)
	}
	rc, size, err := l.blob(desc.Digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size != desc.Size {
		return nil, fmt.Errorf("blob %s: stored size %d, descriptor says %d: %w", desc.Digest, size, desc.Size, store.ErrSizeMismatch)
	}
	b, err := io.ReadAll(io.LimitReader(rc, desc.Size))
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", desc.Digest, err)
	}
	if int64(len(b)) != desc.Size {
		return nil, fmt.Errorf("blob %s: got %d bytes, want %d: %w", desc.Digest, len(b), desc.Size, store.ErrSizeMismatch)
	}
	if err := store.VerifyBytes(desc.Digest, b); err != nil {
		return nil, err
	}
	return b, nil
}

// blobPath returns "blobs/ALG/HEX" for a validated digest.
func blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("blob %q: %w", d, err)
	}
	return path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded()), nil
}

// dirLayout is a layout directory.
type dirLayout struct{ dir string }

func openDirLayout(dir string) (*dirLayout, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return &dirLayout{dir: dir}, nil
}

// openRegular opens p for reading if it is a regular file: a layout (or
// archive) path that names a device or a fifo is refused before it is
// opened, so a hostile layout never reaches a host device.
func openRegular(p string) (*os.File, int64, error) {
	f, st, err := regfile.Open(p, true)
	if err != nil {
		if errors.Is(err, regfile.ErrNotRegular) {
			err = fmt.Errorf("%s: %w", p, err)
		}
		return nil, 0, err
	}
	return f, st.Size, nil
}

func (l *dirLayout) file(name string) (io.ReadCloser, error) {
	f, _, err := openRegular(filepath.Join(l.dir, name))
	return f, err
}

func (l *dirLayout) blob(d digest.Digest) (io.ReadCloser, int64, error) {
	p, err := blobPath(d)
	if err != nil {
		return nil, 0, err
	}
	f, size, err := openRegular(filepath.Join(l.dir, filepath.FromSlash(p)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("blob %s: %w", d, store.ErrNotFound)
	}
	return f, size, err
}

func (l *dirLayout) Close() error { return nil }

// archiveLayout reads a tar of a layout in place: the tar is scanned once for
// the offsets of index.json, oci-layout and blobs/ALG/HEX, which are then
// read as sections of the file. Nothing is extracted, so no name in the
// archive ever reaches the filesystem.
type archiveLayout struct {
	f     *os.File
	files map[string]section
}

type section struct{ off, size int64 }

func openArchiveLayout(p string) (*archiveLayout, error) {
	f, _, err := openRegular(p)
	if err != nil {
		return nil, err
	}
	l := &archiveLayout{f: f, files: map[string]section{}}
	if err := l.scan(); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

func (l *archiveLayout) scan() error {
	var magic [2]byte
	if _, err := l.f.ReadAt(magic[:], 0); err == nil && magic == [2]byte{0x1f, 0x8b} {
		return errors.New("archive is gzip-compressed; oci-archive is an uncompressed tar")
	}
	// tar.Reader reads headers block by block without buffering ahead and
	// seeks over file data, so the file offset after Next is where the
	// entry's data starts.
	tr := tar.NewReader(l.f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading archive: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			continue // directories; anything else is not part of a layout
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if !layoutFileName(name) {
			continue
		}
		off, err := l.f.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("reading archive: %w", err)
		}
		l.files[name] = section{off: off, size: hdr.Size}
	}
	if len(l.files) == 0 {
		return errors.New("archive holds no OCI image layout")
	}
	return nil
}

// layoutFileName reports whether name is a file a layout reader needs.
func layoutFileName(name string) bool {
	if name == ocispec.ImageIndexFile || name == ocispec.ImageLayoutFile {
		return true
	}
	parts := strings.Split(name, "/")
	return len(parts) == 3 && parts[0] == ocispec.ImageBlobsDir &&
		digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2]).Validate() == nil
}

func (l *archiveLayout) open(name string) (io.ReadCloser, int64, bool) {
	s, ok := l.files[name]
	if !ok {
		return nil, 0, false
	}
	return io.NopCloser(io.NewSectionReader(l.f, s.off, s.size)), s.size, true
}

func (l *archiveLayout) file(name string) (io.ReadCloser, error) {
	rc, _, ok := l.open(name)
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, os.ErrNotExist)
	}
	return rc, nil
}

func (l *archiveLayout) blob(d digest.Digest) (io.ReadCloser, int64, error) {
	p, err := blobPath(d)
	if err != nil {
		return nil, 0, err
	}
	rc, size, ok := l.open(p)
	if !ok {
		return nil, 0, fmt.Errorf("blob %s: %w", d, store.ErrNotFound)
	}
	return rc, size, nil
}

func (l *archiveLayout) Close() error { return l.f.Close() }
