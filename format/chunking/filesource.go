package chunking

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// fileSource reads a regular file with pread and finds its holes with
// lseek(SEEK_DATA/SEEK_HOLE), so holes are never read.
type fileSource struct {
	f    *os.File
	rc   syscall.RawConn
	size int64
	// [dataStart, dataEnd) is the data region last found by lseek.
	dataStart, dataEnd int64
	offset             int64 // f's offset when splitting started
	moved              bool  // lseek was called
	noSeek             bool  // the filesystem cannot report holes
	bytesRead          int64 // for tests: holes must not be read
}

func newFileSource(f *os.File, size int64) (*fileSource, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("splitting: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("splitting %s: not a regular file", f.Name())
	}
	if fi.Size() < size {
		return nil, fmt.Errorf("splitting %s: file has %d bytes, want %d: %w", f.Name(), fi.Size(), size, io.ErrUnexpectedEOF)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("splitting %s: %w", f.Name(), err)
	}
	s := &fileSource{f: f, rc: rc, size: size}
	if s.offset, err = s.seek(0, io.SeekCurrent); err != nil {
		return nil, fmt.Errorf("splitting %s: %w", f.Name(), err)
	}
	return s, nil
}

func (s *fileSource) restoreOffset() error {
	if !s.moved {
		return nil
	}
	if _, err := s.seek(s.offset, io.SeekStart); err != nil {
		return fmt.Errorf("restoring file offset: %w", err)
	}
	return nil
}

func (s *fileSource) seek(off int64, whence int) (int64, error) {
	var n int64
	var serr error
	if err := s.rc.Control(func(fd uintptr) { n, serr = unix.Seek(int(fd), off, whence) }); err != nil {
		return 0, err
	}
	return n, serr
}

func (s *fileSource) zeros(off int64) (int64, error) {
	if s.noSeek || (off >= s.dataStart && off < s.dataEnd) {
		return 0, nil
	}
	s.moved = true
	d, err := s.seek(off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO):
		// No data after off: the rest of the file is a hole.
		return s.size - off, nil
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP):
		s.noSeek = true
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("seeking data: %w", err)
	}
	h, err := s.seek(d, unix.SEEK_HOLE)
	if err != nil {
		return 0, fmt.Errorf("seeking hole: %w", err)
	}
	s.dataStart, s.dataEnd = d, h
	return d - off, nil
}

func (s *fileSource) read(p []byte, off int64) (int, error) {
	if !s.noSeek && off >= s.dataStart && off < s.dataEnd {
		// Stop at the block after the data region: what follows is a hole
		// the scanner may skip.
		end := (s.dataEnd + blockSize - 1) / blockSize * blockSize
		if int64(len(p)) > end-off {
			p = p[:end-off]
		}
	}
	n, err := s.f.ReadAt(p, off)
	s.bytesRead += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}
