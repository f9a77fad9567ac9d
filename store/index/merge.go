package index

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/oci2/oci2/format"
)

// A merge writes one index file holding what several hold, entry by entry:
// each table of each file is sorted, so a merge walks them side by side
// (cursor) and copies entries and records through, and its memory does not
// grow with the files: a window of entries per file, the blocks of their
// records a table caches (maxCachedBlocks), and 4 bytes per blob (blobMap).
// Its output is what collecting every file in a tableBuilder wrote.
//
// The sections are written in the file's order, but chunk entries name
// their blob by its number in the new file and blob and frame entries name
// the offsets of records written after them: blobs and frames are merged
// first into temporary files (their records into a third), and copied
// after the chunks.

// mergeWindow is the number of entries a cursor reads at once.
const mergeWindow = 1024

// noBlob maps a blob the merge drops.
const noBlob = math.MaxUint32

// unitBit marks, in a blobMap, a blob that is a unit in the new file.
const unitBit = 1 << 31

// cursor walks one table (chunks, blobs or frames) of an index file.
type cursor struct {
	t      *table
	off, n int // the table's offset and entries
	i      int // current entry
	buf    []byte
	at     int // entry of buf[0]
}

func newCursor(t *table, off, n int) *cursor { return &cursor{t: t, off: off, n: n} }

// entry returns the current entry (valid until the cursor moves on), or nil
// past the end.
func (c *cursor) entry() ([]byte, error) {
	if c.i >= c.n {
		return nil, nil
	}
	if c.i >= c.at+len(c.buf)/entrySize {
		k := min(mergeWindow, c.n-c.i)
		b, err := c.t.section(c.off+c.i*entrySize, k*entrySize)
		if err != nil {
			return nil, err
		}
		c.buf, c.at = b, c.i
	}
	o := (c.i - c.at) * entrySize
	return c.buf[o : o+entrySize], nil
}

// heads returns the cursors whose current entry has the smallest key, and
// that key; ok is false when every cursor is past its end.
func heads(cs []*cursor, out []int) (_ []int, key format.ChunkID, ok bool, err error) {
	out = out[:0]
	var low []byte
	for i, c := range cs {
		e, err := c.entry()
		if err != nil {
			return nil, key, false, err
		}
		if e == nil {
			continue
		}
		switch cmp := bytes.Compare(e[:32], low); {
		case low == nil || cmp < 0:
			low, out = e[:32], append(out[:0], i)
		case cmp == 0:
			out = append(out, i)
		}
	}
	if low == nil {
		return out, key, false, nil
	}
	return out, format.ChunkID(low), true, nil
}

// eachKey calls fn with each key of cs in order and the cursors at it
// (heads); fn moves them past it.
func eachKey(cs []*cursor, fn func(hs []int, key format.ChunkID) error) error {
	var hs []int
	for {
		var key format.ChunkID
		var ok bool
		var err error
		if hs, key, ok, err = heads(cs, hs); err != nil || !ok {
			return err
		}
		if err := fn(hs, key); err != nil {
			return err
		}
	}
}

// spill is a temporary file of dir a merge writes a section to, and copies
// into the index file once its offsets are known.
type spill struct {
	f *os.File
	w *bufio.Writer
	n int64
}

func newSpill(dir string) (*spill, error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return nil, err
	}
	return &spill{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

func (s *spill) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.n += int64(n)
	return n, err
}

// copyTo writes what s holds to w.
func (s *spill) copyTo(w io.Writer) error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err := io.Copy(w, bufio.NewReaderSize(s.f, 256<<10))
	return err
}

func (s *spill) remove() {
	s.f.Close()
	os.Remove(s.f.Name())
}

// merger is one merge of tabs into a new index file.
type merger struct {
	tabs []*table
	keep func(format.ChunkID) bool
	// blobMap maps, for each file, its blob numbers to those of the new
	// file (with unitBit), or noBlob.
	blobMap         [][]uint32
	blobs, frames   *spill
	recs            *spill
	nBlobs, nFrames int
}

func (m *merger) kept(d []byte) bool {
	return m.keep == nil || m.keep(format.ChunkID(d))
}

// merge writes one index file holding everything tabs hold (filtered by
// keep: entries of blobs it does not keep are dropped, and a stored frame
// of one stays known as pending) into dir and returns it opened.
func merge(dir string, tabs []*table, keep func(format.ChunkID) bool) (*table, error) {
	m := &merger{tabs: tabs, keep: keep}
	for _, s := range []**spill{&m.blobs, &m.frames, &m.recs} {
		sp, err := newSpill(dir)
		if err != nil {
			return nil, fmt.Errorf("merging index files: %w", err)
		}
		defer sp.remove()
		*s = sp
	}
	if err := m.mergeBlobs(); err != nil {
		return nil, err
	}
	if err := m.mergeFrames(); err != nil {
		return nil, err
	}
	name, err := writeTable(dir, m.encode)
	if err != nil {
		return nil, err
	}
	return openTable(filepath.Join(dir, name))
}

// encode writes the new file's magic and sections (see writeTable).
func (m *merger) encode(w io.Writer) ([]byte, error) {
	if _, err := io.WriteString(w, tableMagic); err != nil {
		return nil, err
	}
	nc, err := m.mergeChunks(w)
	if err != nil {
		return nil, err
	}
	for _, s := range []*spill{m.blobs, m.frames} {
		if err := s.copyTo(w); err != nil {
			return nil, err
		}
	}
	var counts [3]int
	for i, sec := range []func(*table) []byte{
		func(t *table) []byte { return t.done },
		func(t *table) []byte { return t.units },
		func(t *table) []byte { return t.packs },
	} {
		secs := make([][]byte, len(m.tabs))
		for j, t := range m.tabs {
			secs[j] = sec(t)
		}
		sz := digestSize
		if i == 2 {
			sz = packSize
		}
		if counts[i], err = m.mergeSorted(w, secs, sz); err != nil {
			return nil, err
		}
	}
	if err := m.recs.copyTo(w); err != nil {
		return nil, err
	}
	foot := make([]byte, 0, 7*8)
	for _, n := range []int64{int64(nc), int64(m.nBlobs), int64(m.nFrames), int64(counts[0]), int64(counts[1]), int64(counts[2]), m.recs.n} {
		foot = binary.LittleEndian.AppendUint64(foot, uint64(n))
	}
	return foot, nil
}

// mergeSorted writes the entries of sorted sections secs (sz bytes each,
// read whole when their files were opened) in order, each key once (the
// last file's entry: a tableBuilder's map kept the last one) and only those
// kept, and returns how many.
func (m *merger) mergeSorted(w io.Writer, secs [][]byte, sz int) (int, error) {
	n := 0
	for {
		var low []byte
		for _, s := range secs {
			if len(s) > 0 && (low == nil || bytes.Compare(s[:32], low[:32]) < 0) {
				low = s[:sz]
			}
		}
		if low == nil {
			return n, nil
		}
		key := bytes.Clone(low[:32])
		for i, s := range secs {
			if len(s) > 0 && bytes.Equal(s[:32], key) {
				low = s[:sz]
				secs[i] = s[sz:]
			}
		}
		if !m.kept(key) {
			continue
		}
		if _, err := w.Write(low); err != nil {
			return 0, err
		}
		n++
	}
}
