package chunking

import (
	"bytes"
	"io"

	"github.com/oci2/oci2/format"
)

const (
	scanBufSize = 1 << 20
	blockSize   = format.ZeroBlockSize
	runBlocks   = format.ZeroRunMin / format.ZeroBlockSize
	// minRead is the least free room worth a read; below it the buffer is
	// compacted first.
	minRead = 64 << 10
)

var zeroBlock [blockSize]byte

// scanner finds the zero runs of SPEC.md §3 in a file and serves the bytes of
// the current data segment as an io.Reader (for the chunker), ending it with
// io.EOF at a zero run of at least ZeroRunMin or at the end of the file.
//
// buf holds file bytes in order:
//
//	buf[r:dataEnd]   data of the current segment, not yet read by the chunker
//	buf[dataEnd:c]   classified zero blocks: fewer than runBlocks pending
//	                 (data if a non-zero block follows) or, in a zero run,
//	                 the run's first blocks
//	buf[c:w]         read, not classified yet; c is at a block boundary
//
// and wOff is the file offset of buf[w]. Bytes are classified only once the
// chunker has taken every data byte before them (r == dataEnd), so buf
// never holds more than a zero run's worth of bytes besides new reads.
type scanner struct {
	src  source
	size int64
	buf  []byte

	r, dataEnd, c, w int
	wOff             int64

	zeroRun int64 // > 0: the segment ended at a zero run this long so far
	err     error // sticky error of the source
}

func (sc *scanner) reset(src source, size int64) {
	*sc = scanner{src: src, size: size, buf: sc.buf}
}

func (sc *scanner) inZeroRun() bool { return sc.zeroRun > 0 }

// atEOF: every byte of the file has been read or skipped.
func (sc *scanner) atEOF() bool { return sc.wOff == sc.size }

// Read serves the current segment's data (io.Reader for the chunker).
func (sc *scanner) Read(p []byte) (int, error) {
	for {
		if sc.r < sc.dataEnd {
			n := copy(p, sc.buf[sc.r:sc.dataEnd])
			sc.r += n
			return n, nil
		}
		if sc.err != nil {
			return 0, errSource
		}
		if sc.zeroRun > 0 || (sc.atEOF() && sc.c == sc.w && sc.c == sc.dataEnd) {
			return 0, io.EOF
		}
		if err := sc.classify(); err != nil {
			sc.err = err
		}
	}
}

// classify advances c over the unclassified bytes, reading or skipping more
// of the file when needed, until data is ready, a zero run of runBlocks
// blocks starts, or the file ends. Called with r == dataEnd.
func (sc *scanner) classify() error {
	for {
		for sc.w-sc.c >= blockSize {
			if !bytes.Equal(sc.buf[sc.c:sc.c+blockSize], zeroBlock[:]) {
				sc.c += blockSize
				sc.dataEnd = sc.c
				continue
			}
			sc.c += blockSize
			if sc.c-sc.dataEnd == runBlocks*blockSize {
				sc.zeroRun = runBlocks * blockSize
				return nil
			}
		}
		if sc.r < sc.dataEnd {
			return nil
		}
		if sc.atEOF() {
			// A partial final block is data; so are pending zero blocks.
			sc.c = sc.w
			sc.dataEnd = sc.w
			return nil
		}
		if sc.c == sc.w {
			skipped, err := sc.skipHole(runBlocks - (sc.c-sc.dataEnd)/blockSize)
			if err != nil {
				return err
			}
			if skipped > 0 {
				// The hole completes a zero run: drop its pending blocks.
				sc.zeroRun = int64(sc.c-sc.dataEnd) + skipped
				sc.c, sc.w = sc.dataEnd, sc.dataEnd
				return nil
			}
			if sc.w-sc.c >= blockSize {
				continue // the hole was short and is now zeros in buf
			}
		}
		if err := sc.fill(); err != nil {
			return err
		}
	}
}

// skipHole asks the source for a hole at wOff (a block boundary, with c ==
// w). A hole of at least need full blocks is skipped and its length
// returned; a shorter one is written into buf as zero blocks.
func (sc *scanner) skipHole(need int) (int64, error) {
	n, err := sc.src.zeros(sc.wOff)
	if err != nil || n < blockSize {
		return 0, err
	}
	blocks := min(n, sc.size-sc.wOff) / blockSize
	if blocks >= int64(need) {
		sc.wOff += blocks * blockSize
		return blocks * blockSize, nil
	}
	sc.compact()
	z := sc.buf[sc.w : sc.w+int(blocks)*blockSize]
	clear(z)
	sc.w += len(z)
	sc.wOff += int64(len(z))
	return 0, nil
}

// finishZeroRun is called when the chunker has consumed the segment before a
// zero run: it extends the run over following zero blocks and holes and
// returns its length. The next segment starts after it.
func (sc *scanner) finishZeroRun() (int64, error) {
	n := sc.zeroRun
	sc.zeroRun = 0
	sc.r, sc.dataEnd = sc.c, sc.c // drop the run's blocks in buf
	for {
		for sc.w-sc.c >= blockSize && bytes.Equal(sc.buf[sc.c:sc.c+blockSize], zeroBlock[:]) {
			sc.c += blockSize
			n += blockSize
		}
		sc.r, sc.dataEnd = sc.c, sc.c
		if sc.w-sc.c >= blockSize || sc.atEOF() {
			return n, nil // a non-zero block, a partial final block or the end
		}
		if sc.c == sc.w {
			skipped, err := sc.skipHole(1)
			if err != nil {
				return 0, err
			}
			n += skipped
			if skipped > 0 {
				continue
			}
		}
		if err := sc.fill(); err != nil {
			return 0, err
		}
	}
}

// compact moves the unconsumed bytes to the front of buf when room is short.
func (sc *scanner) compact() {
	if len(sc.buf)-sc.w >= minRead || sc.r == 0 {
		return
	}
	n := copy(sc.buf, sc.buf[sc.r:sc.w])
	sc.dataEnd -= sc.r
	sc.c -= sc.r
	sc.w = n
	sc.r = 0
}

// fill reads more of the file into buf.
func (sc *scanner) fill() error {
	sc.compact()
	p := sc.buf[sc.w:]
	if left := sc.size - sc.wOff; int64(len(p)) > left {
		p = p[:left]
	}
	n, err := sc.src.read(p, sc.wOff)
	sc.w += n
	sc.wOff += int64(n)
	if err == io.EOF && sc.wOff < sc.size {
		return io.ErrUnexpectedEOF
	}
	if n > 0 {
		return nil
	}
	return err
}
