package writer

import (
	"errors"
	"fmt"
	"io"

	"github.com/oci2/oci2/internal/regfile"
)

// SourceFile is the Content of a regular file found by FromDir. It knows the
// file's identity at walk time, so Open refuses a file replaced meanwhile
// and the files cache can recognise an unchanged file.
type SourceFile struct {
	Dir  string // the absolute source directory given to FromDir
	Rel  string // slash path of the file relative to Dir
	Path string // Dir joined with Rel

	Dev, Ino uint64
	Size     int64
	MtimeNs  int64
	CtimeNs  int64
	// StatNs is a wall clock time (unix ns) taken before the file's
	// metadata was read: a later change gets a ctime from about then on.
	StatNs int64
}

// Open opens the file without following a symlink, and only if it is still
// the regular file that was walked: its type is checked before it is opened
// for reading, so a device node or fifo swapped in is never opened.
func (f *SourceFile) Open() (io.ReadCloser, error) {
	fh, st, err := regfile.Open(f.Path, false)
	if errors.Is(err, regfile.ErrNotRegular) {
		return nil, fmt.Errorf("%s: no longer a regular file: %w", f.Path, err)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case st.Dev != f.Dev || st.Ino != f.Ino:
		err = errors.New("replaced during the walk")
	case st.Size != f.Size:
		err = fmt.Errorf("size changed from %d to %d during the walk", f.Size, st.Size)
	}
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	return fh, nil
}
