package writer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
)

// A candidate (Node.Candidate) is checked instead of chunking the file:
// chunking is a deterministic function of the file's bytes alone (SPEC.md
// §3: zero runs by content, Rabin boundaries by content, chunker restarted
// at every file and segment), so the same bytes always give the same
// extents. Every data extent's bytes hashing (SHA-256) to its chunk ID and
// every zero extent's bytes being zeros means the file holds exactly the
// bytes the candidate was made from, so chunking it again would give the
// candidate. The check costs one read and SHA-256 of the file, no Rabin
// chunking, and, as for known extents, no frame is compressed again
// unless the store lacks it. A file that does not check out (changed
// bytes, an error opening or reading it) is chunked as any other; a real
// error is reported from there.

// verifyBufSize holds the largest data extent (format.ChunkMaxSize) with
// room to spare, and is the step in which zero extents are read.
const verifyBufSize = 1 << 20

// verifyFile reports whether c's size bytes are exactly those of ext,
// reading in order and stopping at the first extent that differs.
func verifyFile(ctx context.Context, c Content, size int64, ext []format.Extent, buf []byte) bool {
	rc, err := c.Open() // a SourceFile checks it is still the file walked
	if err != nil {
		return false
	}
	defer rc.Close()
	f, ok := rc.(*os.File)
	if !ok {
		return false
	}
	m := mapFile(f, size)
	if m != nil {
		defer unix.Munmap(m)
	}
	var off int64
	for _, x := range ext {
		if ctx.Err() != nil {
			return false
		}
		n := int64(x.Length)
		if n <= 0 || off+n > size {
			return false
		}
		if x.Zero {
			if !zerosAt(f, off, n, buf) {
				return false
			}
		} else {
			if n > int64(len(buf)) {
				return false
			}
			var p []byte
			if m != nil {
				p = m[off : off+n]
			} else {
				p = buf[:n]
				if _, err := f.ReadAt(p, off); err != nil {
					return false
				}
			}
			if !sumIs(p, x.Chunk, m != nil) {
				return false
			}
		}
		off += n
	}
	return off == size
}

// mapMin is the size from which a file is mapped rather than read: the
// hash then reads the page cache directly (no copy), which for a rebuilt
// tree of hundreds of megabytes saves a tenth of the check's CPU.
const mapMin = 256 << 10

// mapFile maps f read-only, or returns nil (small file, mmap refused).
func mapFile(f *os.File, size int64) []byte {
	if size < mapMin || int64(int(size)) != size {
		return nil
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	_ = unix.Madvise(m, unix.MADV_SEQUENTIAL)
	return m
}

// sumIs reports whether p hashes to id. Bytes of a mapping fault (SIGBUS)
// if the file shrank meanwhile: that is a mismatch, not a crash.
func sumIs(p []byte, id format.ChunkID, mapped bool) (ok bool) {
	if mapped {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				if _, fault := r.(runtime.Error); !fault {
					panic(r)
				}
				ok = false
			}
		}()
	}
	return format.Sum(p) == id
}

// zerosAt reports whether f's n bytes at off are all zeros. Holes (found
// with SEEK_DATA/SEEK_HOLE) are not read; where the filesystem cannot
// report them, every byte is read.
func zerosAt(f *os.File, off, n int64, buf []byte) bool {
	end := off + n
	holes := true
	for off < end {
		dataEnd := end
		if holes {
			d, h, ok, err := nextData(f, off)
			switch {
			case err != nil:
				holes = false // read everything from here
			case !ok || d >= end:
				return true // a hole up to end (or to the end of the file)
			default:
				off, dataEnd = d, min(h, end)
			}
		}
		for off < dataEnd {
			p := buf[:min(int64(len(buf)), dataEnd-off)]
			if _, err := f.ReadAt(p, off); err != nil {
				return false
			}
			if !allZero(p) {
				return false
			}
			off += int64(len(p))
		}
	}
	return true
}

// nextData returns the data region [d, h) of f at or after off; ok is
// false when the rest of the file is a hole.
func nextData(f *os.File, off int64) (d, h int64, ok bool, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, 0, false, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		d, serr = unix.Seek(int(fd), off, unix.SEEK_DATA)
		if serr == nil {
			h, serr = unix.Seek(int(fd), d, unix.SEEK_HOLE)
		}
	}); err != nil {
		return 0, 0, false, err
	}
	if errors.Is(serr, unix.ENXIO) {
		return 0, 0, false, nil
	}
	return d, h, serr == nil, serr
}

// zeroBlock is compared against in pieces: bytes.Equal is vectorised.
var zeroBlock [64 << 10]byte

// allZero reports whether p holds only zero bytes.
func allZero(p []byte) bool {
	for len(p) > 0 {
		n := min(len(p), len(zeroBlock))
		if !bytes.Equal(p[:n], zeroBlock[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}
