package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sort"
	"sync"
	"sync/atomic"

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
//	block CRCs: the CRC-32C of each 64 KiB block of everything above
//	footer: the six counts and the records' length (uint64 each), the
//	        CRC-32C of the block CRCs and these counts, magic again
//
// Integers are little endian. Every table is sorted by its first field;
// chunks by ID, then holders that are units first. A stored frame's ref is
// its blob's number, a virtual or pending frame's the offset of its record.
//
// Opening a file checks its footer and block CRCs and the blocks of done,
// units and packs, which are read whole; any other block is checked the
// first time a lookup reads it. A block that fails marks the file corrupt:
// lookups then find nothing in it, and the next Refresh rebuilds the index.
const (
	tableMagic   = "oci2idx1"
	entrySize    = 32 + 12
	digestSize   = 32
	packSize     = 64
	footerSize   = 7*8 + 4 + len(tableMagic)
	blockSize    = 64 << 10
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
	// sections of data, and where the lazily checked ones start
	chunks, blobs, frames, done, units, packs, records []byte
	cOff, bOff, fOff, rOff                             int
	size                                               int64
	body                                               int    // bytes covered by block CRCs
	crcs                                               []byte // of data

	mu      sync.Mutex
	checked []uint64 // bitmap of the blocks whose CRC matched
	corrupt atomic.Bool
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

// parse checks the footer and the block CRCs and splits the file into its
// sections by the footer's counts; the sections read whole are checked.
func (t *table) parse() error {
	d := t.data
	foot := d[len(d)-footerSize:]
	if string(foot[footerSize-len(tableMagic):]) != tableMagic {
		return fmt.Errorf("no trailing magic: %w", errCorrupt)
	}
	var c [7]uint64
	for i := range c {
		c[i] = binary.LittleEndian.Uint64(foot[8*i:])
	}
	sizes := []uint64{entrySize, entrySize, entrySize, digestSize, digestSize, packSize, 1}
	secs := []*[]byte{&t.chunks, &t.blobs, &t.frames, &t.done, &t.units, &t.packs, &t.records}
	offs := []*int{&t.cOff, &t.bOff, &t.fOff, nil, nil, nil, &t.rOff}
	off := uint64(len(tableMagic))
	limit := uint64(len(d) - footerSize)
	for i, s := range secs {
		if c[i] > limit/sizes[i] || off+c[i]*sizes[i] > limit {
			return fmt.Errorf("sections beyond the file: %w", errCorrupt)
		}
		*s = d[off : off+c[i]*sizes[i]]
		if offs[i] != nil {
			*offs[i] = int(off)
		}
		off += c[i] * sizes[i]
	}
	blocks := (off + blockSize - 1) / blockSize
	if off+4*blocks != limit {
		return fmt.Errorf("%d bytes between sections and footer, want %d block CRCs: %w", limit-off, blocks, errCorrupt)
	}
	t.body, t.crcs = int(off), d[off:limit]
	h := crc32.New(crcTable)
	h.Write(t.crcs)
	h.Write(foot[:7*8])
	if binary.LittleEndian.Uint32(foot[7*8:]) != h.Sum32() {
		return fmt.Errorf("footer checksum mismatch: %w", errCorrupt)
	}
	t.checked = make([]uint64, (blocks+63)/64)
	if !t.check(0, len(tableMagic)) || string(d[:len(tableMagic)]) != tableMagic {
		return fmt.Errorf("no magic: %w", errCorrupt)
	}
	start := int(off) - len(t.records) - len(t.packs) - len(t.units) - len(t.done)
	if !t.check(start, len(t.done)+len(t.units)+len(t.packs)) {
		return fmt.Errorf("block checksum mismatch: %w", errCorrupt)
	}
	return nil
}

// check reports whether the n bytes at off lie in blocks whose CRC matches,
// checking those not checked yet; a mismatch marks t corrupt.
func (t *table) check(off, n int) bool {
	if t.corrupt.Load() {
		return false
	}
	if n <= 0 {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for b := off / blockSize; b <= (off+n-1)/blockSize; b++ {
		if t.checked[b/64]&(1<<(b%64)) != 0 {
			continue
		}
		end := min((b+1)*blockSize, t.body)
		if crc32.Checksum(t.data[b*blockSize:end], crcTable) != le32(t.crcs[4*b:]) {
			t.corrupt.Store(true)
			return false
		}
		t.checked[b/64] |= 1 << (b % 64)
	}
	return true
}

// checkAll checks every block (before a pass over whole sections).
func (t *table) checkAll() error {
	if !t.check(0, t.body) {
		return fmt.Errorf("index file %s: block checksum mismatch: %w", t.name, errCorrupt)
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

// search returns the first entry of sec (of entrySize bytes, starting at
// off in the file) whose key is >= k; ok is false when t is corrupt.
func (t *table) search(sec []byte, off int, k []byte) (int, bool) {
	i := sort.Search(len(sec)/entrySize, func(i int) bool {
		if !t.check(off+i*entrySize, entrySize) {
			return true
		}
		return bytes.Compare(sec[i*entrySize:i*entrySize+32], k) >= 0
	})
	return i, !t.corrupt.Load()
}

// entry returns entry i of sec (starting at off), checked.
func (t *table) entry(sec []byte, off, i int) ([]byte, bool) {
	if !t.check(off+i*entrySize, entrySize) {
		return nil, false
	}
	return sec[i*entrySize : (i+1)*entrySize], true
}

// tchunk is a chunk entry: the chunk is held by blob number blob at offset.
type tchunk struct {
	blob         uint32
	offset, size uint32
}

// chunkHolders calls fn for every entry of chunk id, units first, until fn
// returns false.
func (t *table) chunkHolders(id format.ChunkID, fn func(tchunk) bool) {
	i, ok := t.search(t.chunks, t.cOff, id[:])
	for ; ok && i < t.nChunks(); i++ {
		e, ok := t.entry(t.chunks, t.cOff, i)
		if !ok || !bytes.Equal(e[:32], id[:]) {
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
	e, ok := t.entry(t.blobs, t.bOff, int(n))
	if !ok {
		return d, 0, 0, fmt.Errorf("index file %s: block checksum mismatch: %w", t.name, errCorrupt)
	}
	copy(d[:], e[:32])
	return d, binary.LittleEndian.Uint64(e[32:]), le32(e[40:]), nil
}

// findBlob returns the number of the blob with digest d.
func (t *table) findBlob(d format.ChunkID) (uint32, bool) {
	i, ok := t.search(t.blobs, t.bOff, d[:])
	if !ok || i >= t.nBlobs() {
		return 0, false
	}
	e, ok := t.entry(t.blobs, t.bOff, i)
	return uint32(i), ok && bytes.Equal(e[:32], d[:])
}

// findFrame returns the kind and ref of frame key.
func (t *table) findFrame(key format.ChunkID) (kind uint32, ref uint64, ok bool) {
	i, ok := t.search(t.frames, t.fOff, key[:])
	if !ok || i >= t.nFrames() {
		return 0, 0, false
	}
	e, ok := t.entry(t.frames, t.fOff, i)
	if !ok || !bytes.Equal(e[:32], key[:]) {
		return 0, 0, false
	}
	return le32(e[40:]), binary.LittleEndian.Uint64(e[32:]), true
}

// record decodes the frame record at off.
func (t *table) record(off uint64) (format.Frame, error) {
	if off > uint64(len(t.records)) || uint64(len(t.records))-off < 4 {
		return format.Frame{}, fmt.Errorf("index file %s: record %d beyond %d: %w", t.name, off, len(t.records), errCorrupt)
	}
	if !t.check(t.rOff+int(off), 4) {
		return format.Frame{}, fmt.Errorf("index file %s: block checksum mismatch: %w", t.name, errCorrupt)
	}
	n := uint64(le32(t.records[off:]))
	if n > maxRecordLen || uint64(len(t.records))-off-4 < n {
		return format.Frame{}, fmt.Errorf("index file %s: record %d of %d bytes: %w", t.name, off, n, errCorrupt)
	}
	if !t.check(t.rOff+int(off)+4, int(n)) {
		return format.Frame{}, fmt.Errorf("index file %s: block checksum mismatch: %w", t.name, errCorrupt)
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
