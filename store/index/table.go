package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
)

// An index file (SPEC.md §8.2) is an immutable table of what a store held
// when it was written: sorted fixed-size entries searched in place through
// mmap, so opening one costs a checksum pass and not its size in memory.
//
//	magic "oci2idx1"
//	chunks  n × 44: chunk ID, blob number (uint32), offset, size (uint32)
//	blobs   n × 44: blob digest, record offset (uint64), flags (uint32)
//	frames  n × 44: frame key, ref (uint64), kind (uint32)
//	done    n × 32: manifests, image indexes and pack indexes scanned
//	units   n × 32: unit descriptors read
//	packs   n × 64: pack index digest, pack digest
//	records: for each, its length (uint32) and the pack index encoding
//	         (SPEC.md §5.3) of one frame
//	footer: the six counts and the records' length (uint64 each), the
//	        CRC-32C of every byte before it, magic again
//
// Integers are little endian. Every table is sorted by its first field;
// chunks by ID, then holders that are units first. A stored frame's ref is
// its blob's number, a virtual or pending frame's the offset of its record.
const (
	tableMagic   = "oci2idx1"
	entrySize    = 32 + 12
	digestSize   = 32
	packSize     = 64
	footerSize   = 7*8 + 4 + len(tableMagic)
	blobUnit     = 1 // blob flag: the blob is a unit (described in oci2/units)
	maxRecordLen = format.MaxPackIndexSize
)

// Frame kinds in an index file.
const (
	kindStored  = 1 // its blob was present
	kindVirtual = 2 // its chunks were held by other blobs
	kindPending = 3 // named by an image, its blob was missing
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks an index file that fails its checks: it is removed and
// what it covered is scanned again.
var errCorrupt = errors.New("corrupt index file")

// table is one open index file.
type table struct {
	name string
	data []byte // mmap of the whole file
	// sections of data
	chunks, blobs, frames, done, units, packs, records []byte
	size                                               int64
}

// openTable maps and checks the index file at path.
func openTable(path string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n := fi.Size()
	if n < int64(len(tableMagic)+footerSize) {
		return nil, fmt.Errorf("index file %s: %d bytes: %w", fi.Name(), n, errCorrupt)
	}
	// Checked with reads, not through the map: the pass leaves the pages in
	// the page cache, not in this process's resident set.
	if err := checkCRC(f, n); err != nil {
		return nil, fmt.Errorf("index file %s: %w", fi.Name(), err)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("index file %s: mmap: %w", fi.Name(), err)
	}
	t := &table{name: fi.Name(), data: data, size: n}
	if err := t.parse(); err != nil {
		t.close()
		return nil, fmt.Errorf("index file %s: %w", fi.Name(), err)
	}
	return t, nil
}

// checkCRC reads the file and compares its CRC-32C with the footer's.
func checkCRC(f *os.File, n int64) error {
	body := n - 4 - int64(len(tableMagic))
	h := crc32.New(crcTable)
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, body)); err != nil {
		return err
	}
	var tail [4 + len(tableMagic)]byte
	if _, err := f.ReadAt(tail[:], body); err != nil {
		return err
	}
	if string(tail[4:]) != tableMagic {
		return fmt.Errorf("no trailing magic: %w", errCorrupt)
	}
	if binary.LittleEndian.Uint32(tail[:4]) != h.Sum32() {
		return fmt.Errorf("checksum mismatch: %w", errCorrupt)
	}
	return nil
}

// parse splits the file into its sections by the footer's counts.
func (t *table) parse() error {
	d := t.data
	if string(d[:len(tableMagic)]) != tableMagic {
		return fmt.Errorf("no magic: %w", errCorrupt)
	}
	foot := d[len(d)-footerSize:]
	var c [7]uint64
	for i := range c {
		c[i] = binary.LittleEndian.Uint64(foot[8*i:])
	}
	sizes := []uint64{entrySize, entrySize, entrySize, digestSize, digestSize, packSize, 1}
	secs := []*[]byte{&t.chunks, &t.blobs, &t.frames, &t.done, &t.units, &t.packs, &t.records}
	off := uint64(len(tableMagic))
	limit := uint64(len(d) - footerSize)
	for i, s := range secs {
		if c[i] > limit/sizes[i] || off+c[i]*sizes[i] > limit {
			return fmt.Errorf("sections beyond the file: %w", errCorrupt)
		}
		*s = d[off : off+c[i]*sizes[i]]
		off += c[i] * sizes[i]
	}
	if off != limit {
		return fmt.Errorf("%d bytes between sections and footer: %w", limit-off, errCorrupt)
	}
	return nil
}

func (t *table) close() {
	if t.data != nil {
		unix.Munmap(t.data)
		t.data = nil
	}
}

func (t *table) nChunks() int { return len(t.chunks) / entrySize }
func (t *table) nBlobs() int  { return len(t.blobs) / entrySize }
func (t *table) nFrames() int { return len(t.frames) / entrySize }

// search returns the first entry of sec (of size sz) whose key is >= k.
func search(sec []byte, sz int, k []byte) int {
	return sort.Search(len(sec)/sz, func(i int) bool { return bytes.Compare(sec[i*sz:i*sz+32], k) >= 0 })
}

// tchunk is a chunk entry: the chunk is held by blob number blob at offset.
type tchunk struct {
	blob         uint32
	offset, size uint32
}

// chunkHolders calls fn for every entry of chunk id, units first, until fn
// returns false.
func (t *table) chunkHolders(id format.ChunkID, fn func(tchunk) bool) {
	for i := search(t.chunks, entrySize, id[:]); i < t.nChunks(); i++ {
		e := t.chunks[i*entrySize:]
		if !bytes.Equal(e[:32], id[:]) {
			return
		}
		c := tchunk{blob: le32(e[32:]), offset: le32(e[36:]), size: le32(e[40:])}
		if !fn(c) {
			return
		}
	}
}

// blobAt returns blob n's digest, record offset and flags.
func (t *table) blobAt(n uint32) (d format.ChunkID, rec uint64, flags uint32, err error) {
	if int(n) >= t.nBlobs() {
		return d, 0, 0, fmt.Errorf("index file %s: blob %d of %d: %w", t.name, n, t.nBlobs(), errCorrupt)
	}
	e := t.blobs[int(n)*entrySize:]
	copy(d[:], e[:32])
	return d, binary.LittleEndian.Uint64(e[32:]), le32(e[40:]), nil
}

// findBlob returns the number of the blob with digest d.
func (t *table) findBlob(d format.ChunkID) (uint32, bool) {
	i := search(t.blobs, entrySize, d[:])
	if i < t.nBlobs() && bytes.Equal(t.blobs[i*entrySize:i*entrySize+32], d[:]) {
		return uint32(i), true
	}
	return 0, false
}

// findFrame returns the kind and ref of frame key.
func (t *table) findFrame(key format.ChunkID) (kind uint32, ref uint64, ok bool) {
	i := search(t.frames, entrySize, key[:])
	if i >= t.nFrames() {
		return 0, 0, false
	}
	e := t.frames[i*entrySize:]
	if !bytes.Equal(e[:32], key[:]) {
		return 0, 0, false
	}
	return le32(e[40:]), binary.LittleEndian.Uint64(e[32:]), true
}

// record decodes the frame record at off.
func (t *table) record(off uint64) (format.Frame, error) {
	if off > uint64(len(t.records)) || uint64(len(t.records))-off < 4 {
		return format.Frame{}, fmt.Errorf("index file %s: record %d beyond %d: %w", t.name, off, len(t.records), errCorrupt)
	}
	n := uint64(le32(t.records[off:]))
	if n > maxRecordLen || uint64(len(t.records))-off-4 < n {
		return format.Frame{}, fmt.Errorf("index file %s: record %d of %d bytes: %w", t.name, off, n, errCorrupt)
	}
	pi, err := format.DecodePackIndex(t.records[off+4 : off+4+n])
	if err != nil || len(pi.Frames) != 1 {
		return format.Frame{}, fmt.Errorf("index file %s: record %d: %v: %w", t.name, off, err, errCorrupt)
	}
	return pi.Frames[0], nil
}

// blobFrame returns blob n's frame and whether it is a unit.
func (t *table) blobFrame(n uint32) (format.Frame, bool, error) {
	d, rec, flags, err := t.blobAt(n)
	if err != nil {
		return format.Frame{}, false, err
	}
	f, err := t.record(rec)
	if err == nil && f.Digest != d {
		err = fmt.Errorf("index file %s: blob %s has the record of %s: %w", t.name, d, f.Digest, errCorrupt)
	}
	return f, flags&blobUnit != 0, err
}

// digests calls fn for each 32-byte digest of sec.
func eachDigest(sec []byte, sz int, fn func(a, b format.ChunkID)) {
	for i := 0; i+sz <= len(sec); i += sz {
		var a, b format.ChunkID
		copy(a[:], sec[i:i+32])
		if sz == packSize {
			copy(b[:], sec[i+32:i+64])
		}
		fn(a, b)
	}
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
