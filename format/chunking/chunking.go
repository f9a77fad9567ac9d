package chunking

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/restic/chunker"

	"github.com/oci2/oci2/format"
)

// EmitFunc receives extents in file order. For data extents, data holds the
// chunk's bytes and is valid only during the call; for zero extents it is nil.
type EmitFunc func(e format.Extent, data []byte) error

// Splitter cuts files into extents. It keeps buffers between calls; it is not
// safe for concurrent use (use one per goroutine).
type Splitter struct {
	ch    *chunker.Chunker
	chunk []byte // chunk bytes handed to emit, cap ChunkMaxSize
	scan  scanner
	// fileBytesRead counts the bytes the last SplitFile read (tests check
	// that holes are skipped).
	fileBytesRead int64
}

// NewSplitter returns a Splitter with the format's fixed parameters.
func NewSplitter() *Splitter {
	return &Splitter{
		ch:    chunker.NewWithBoundaries(nil, format.ChunkerPolynomial, format.ChunkMinSize, format.ChunkMaxSize),
		chunk: make([]byte, 0, format.ChunkMaxSize),
		scan:  scanner{buf: make([]byte, scanBufSize)},
	}
}

// Split reads exactly size bytes of logical file content from r and emits its
// extents. Fewer bytes than size is an error (io.ErrUnexpectedEOF).
func (s *Splitter) Split(r io.Reader, size int64, emit EmitFunc) error {
	if size < 0 {
		return fmt.Errorf("splitting: negative size %d", size)
	}
	return s.split(&readerSource{r: r}, size, emit)
}

// SplitFile is Split for an open regular file: holes found with
// SEEK_DATA/SEEK_HOLE are not read. It gives the same extents as Split of the
// same logical bytes. It reads with pread; f's offset, which lseek moves,
// is restored before it returns.
func (s *Splitter) SplitFile(f *os.File, size int64, emit EmitFunc) error {
	if size < 0 {
		return fmt.Errorf("splitting %s: negative size %d", f.Name(), size)
	}
	src, err := newFileSource(f, size)
	if err != nil {
		return err
	}
	err = s.split(src, size, emit)
	s.fileBytesRead = src.bytesRead
	if rerr := src.restoreOffset(); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("splitting %s: %w", f.Name(), err)
	}
	return nil
}

// split cuts the file into data segments and zero extents (scanner) and each
// segment into chunks with a freshly reset chunker (SPEC.md §3).
func (s *Splitter) split(src source, size int64, emit EmitFunc) error {
	sc := &s.scan
	sc.reset(src, size)
	defer sc.reset(nil, 0) // drop the caller's reader
	for {
		s.ch.ResetWithBoundaries(sc, format.ChunkerPolynomial, format.ChunkMinSize, format.ChunkMaxSize)
		s.ch.SetAverageBits(format.ChunkAverageBits)
		for {
			c, err := s.ch.Next(s.chunk[:0])
			if err == io.EOF {
				break
			}
			if err != nil {
				if sc.err != nil {
					return sc.err
				}
				return err
			}
			id := format.ChunkID(sha256.Sum256(c.Data))
			if err := emit(format.Extent{Length: uint64(c.Length), Chunk: id}, c.Data); err != nil {
				return err
			}
		}
		if sc.err != nil {
			return sc.err
		}
		if !sc.inZeroRun() {
			return nil
		}
		n, err := sc.finishZeroRun()
		if err != nil {
			return err
		}
		if err := emit(format.Extent{Zero: true, Length: uint64(n)}, nil); err != nil {
			return err
		}
	}
}

// source supplies a file's logical bytes to the scanner.
type source interface {
	// read reads bytes at off, the offset after the last byte read or
	// skipped. It returns io.EOF only when no byte is left.
	read(p []byte, off int64) (int, error)
	// zeros returns how many bytes from off are known to be zero without
	// reading them (a hole), or 0.
	zeros(off int64) (int64, error)
}

type readerSource struct{ r io.Reader }

func (rs *readerSource) read(p []byte, off int64) (int, error) {
	for i := 0; i < 100; i++ {
		n, err := rs.r.Read(p)
		if n > 0 {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrNoProgress
}

func (rs *readerSource) zeros(int64) (int64, error) { return 0, nil }

// errSource is what the scanner tells the chunker when the source failed;
// split reports the source's own error. (The chunker would take an
// io.ErrUnexpectedEOF from its reader for a short read and retry forever.)
var errSource = errors.New("source failed")
