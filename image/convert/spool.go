package convert

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// spool keeps the content of regular files of the layers being imported:
// one file per tar entry, since a later layer may replace the path while an
// earlier hardlink still names the old content. Runs of zero blocks are
// skipped with Seek, so sparse layer files stay sparse.
type spool struct {
	dir string
	n   int
	buf []byte
}

func newSpool(parent string) (*spool, error) {
	dir, err := os.MkdirTemp(parent, "oci2-import-")
	if err != nil {
		return nil, fmt.Errorf("creating spool directory: %w", err)
	}
	return &spool{dir: dir, buf: make([]byte, 64<<10)}, nil
}

// write copies exactly size bytes of r into a new spool file.
func (s *spool) write(r io.Reader, size int64) (string, error) {
	s.n++
	p := filepath.Join(s.dir, strconv.Itoa(s.n))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("spooling: %w", err)
	}
	err = s.copy(f, r, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
		return "", fmt.Errorf("spooling file content: %w", err)
	}
	return p, nil
}

var zeroBlock = make([]byte, 4096)

func (s *spool) copy(f *os.File, r io.Reader, size int64) error {
	var done int64
	for done < size {
		b := s.buf[:min(int64(len(s.buf)), size-done)]
		if _, err := io.ReadFull(r, b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		// Write non-zero 4 KiB blocks, seek over zero ones.
		for off := 0; off < len(b); {
			end := min(off+len(zeroBlock), len(b))
			if bytes.Equal(b[off:end], zeroBlock[:end-off]) {
				if _, err := f.Seek(int64(end-off), io.SeekCurrent); err != nil {
					return err
				}
			} else if _, err := f.Write(b[off:end]); err != nil {
				return err
			}
			off = end
		}
		done += int64(len(b))
	}
	return f.Truncate(size) // materializes a trailing hole
}

func (s *spool) remove(p string) {
	if p != "" {
		os.Remove(p)
	}
}

func (s *spool) Close() error { return os.RemoveAll(s.dir) }

// spoolContent opens a spooled file ("" is an empty file).
type spoolContent string

func (c spoolContent) Open() (io.ReadCloser, error) {
	if c == "" {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	return os.Open(string(c))
}
