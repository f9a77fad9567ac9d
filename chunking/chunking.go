package chunking

import (
	"io"
	"os"

	"github.com/oci2/oci2/format"
)

// EmitFunc receives extents in file order. For data extents, data holds the
// chunk's bytes and is valid only during the call; for zero extents it is nil.
type EmitFunc func(e format.Extent, data []byte) error

// Splitter cuts files into extents. It keeps buffers between calls; it is not
// safe for concurrent use (use one per goroutine).
type Splitter struct {
	// TODO(H1)
}

// NewSplitter returns a Splitter with the format's fixed parameters.
func NewSplitter() *Splitter { return &Splitter{} }

// Split reads exactly size bytes of logical file content from r and emits its
// extents. Fewer bytes than size is an error (io.ErrUnexpectedEOF).
func (s *Splitter) Split(r io.Reader, size int64, emit EmitFunc) error {
	panic("TODO(H1)")
}

// SplitFile is Split for an open regular file: holes found with
// SEEK_DATA/SEEK_HOLE are not read. It gives the same extents as Split of the
// same logical bytes.
func (s *Splitter) SplitFile(f *os.File, size int64, emit EmitFunc) error {
	panic("TODO(H1)")
}
