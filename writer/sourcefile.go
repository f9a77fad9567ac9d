package writer

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
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

// Open opens the file without following a symlink and without blocking on a
// fifo swapped in, and checks it is still the regular file that was walked.
func (f *SourceFile) Open() (io.ReadCloser, error) {
	fd, err := unix.Open(f.Path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: f.Path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: f.Path, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		err = errors.New("no longer a regular file")
	case st.Dev != f.Dev || st.Ino != f.Ino:
		err = errors.New("replaced during the walk")
	case st.Size != f.Size:
		err = fmt.Errorf("size changed from %d to %d during the walk", f.Size, st.Size)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	return os.NewFile(uintptr(fd), f.Path), nil
}
