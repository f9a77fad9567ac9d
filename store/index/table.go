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

	"github.com/oci2/oci2/format"
)

// An index file is an immutable table of what a store held when it was
// written: sorted fixed-size entries binary-searched in place, so opening
// one costs neither a pass over it nor its size in memory. Its layout
// (tables, records, block CRCs, footer) is SPEC.md §8.2's table.
//
// Opening a file checks its footer and block CRCs and reads done, units and
// packs whole; a lookup reads the blocks it needs with pread, checks them
// and keeps only the keys its searches probe first (topKey; not mmap: the
// kernel maps pages around each one touched, and they would count in the
// process's memory). A block that fails marks
// the file corrupt: lookups then find nothing in it, and the next Refresh
// rebuilds the index.
const (
	tableMagic = "oci2idx1"
	entrySize  = 32 + 12
	digestSize = 32
	packSize   = 64
	footerSize = int64(7*8 + 4 + len(tableMagic))
	// blockSize is a page: a lookup reads and checks the page of each
	// entry it probes.
	blockSize = 4 << 10
	// maxCachedBlocks bounds the checked blocks a table keeps (4 MiB).
	maxCachedBlocks = 1024
	blobUnit        = 1 // blob flag: the blob is a unit (described in oci2/units)
	maxRecordLen    = format.MaxPackIndexSize
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
	f    *os.File
	size int64
	body int    // bytes covered by block CRCs
	crcs []byte // one per block

	// where the sections start, and their entries (records: bytes)
	cOff, bOff, fOff, rOff int
	nc, nb, nf, rLen       int
	done, units, packs     []byte // read whole when opened

	mu      sync.Mutex
	blocks  map[int][]byte // checked blocks
	keys    map[int][]byte // keys of the top levels' probes, by offset
	corrupt atomic.Bool
}

// openTable opens and checks the index file at path.
func openTable(path string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	t := &table{name: fi.Name(), f: f, size: fi.Size(), blocks: make(map[int][]byte), keys: make(map[int][]byte)}
	if err := t.parse(); err != nil {
		t.close()
		return nil, fmt.Errorf("index file %s: %w", fi.Name(), err)
	}
	return t, nil
}

// parse checks the footer and the block CRCs, finds the sections by the
// footer's counts and reads those read whole.
func (t *table) parse() error {
	if t.size < int64(len(tableMagic))+footerSize {
		return fmt.Errorf("%d bytes: %w", t.size, errCorrupt)
	}
	foot := make([]byte, footerSize)
	if _, err := t.f.ReadAt(foot, t.size-footerSize); err != nil {
		return err
	}
	if string(foot[footerSize-int64(len(tableMagic)):]) != tableMagic {
		return fmt.Errorf("no trailing magic: %w", errCorrupt)
	}
	var c [7]uint64
	for i := range c {
		c[i] = binary.LittleEndian.Uint64(foot[8*i:])
	}
	sizes := []uint64{entrySize, entrySize, entrySize, digestSize, digestSize, packSize, 1}
	offs := make([]int, len(sizes))
	off := uint64(len(tableMagic))
	limit := uint64(t.size - footerSize)
	for i := range sizes {
		if c[i] > limit/sizes[i] || off+c[i]*sizes[i] > limit {
			return fmt.Errorf("sections beyond the file: %w", errCorrupt)
		}
		offs[i] = int(off)
		off += c[i] * sizes[i]
	}
	blocks := (off + blockSize - 1) / blockSize
	if off+4*blocks != limit {
		return fmt.Errorf("%d bytes between sections and footer, want %d block CRCs: %w", limit-off, blocks, errCorrupt)
	}
	t.body = int(off)
	t.crcs = make([]byte, 4*blocks)
	if _, err := t.f.ReadAt(t.crcs, int64(off)); err != nil {
		return err
	}
	h := crc32.New(crcTable)
	h.Write(t.crcs)
	h.Write(foot[:7*8])
	if binary.LittleEndian.Uint32(foot[7*8:]) != h.Sum32() {
		return fmt.Errorf("footer checksum mismatch: %w", errCorrupt)
	}
	t.cOff, t.bOff, t.fOff, t.rOff = offs[0], offs[1], offs[2], offs[6]
	t.nc, t.nb, t.nf, t.rLen = int(c[0]), int(c[1]), int(c[2]), int(c[6])
	magic, ok := t.read(0, len(tableMagic))
	if !ok || string(magic) != tableMagic {
		return fmt.Errorf("no magic: %w", errCorrupt)
	}
	all, ok := t.read(offs[3], int(c[3]*digestSize+c[4]*digestSize+c[5]*packSize))
	if !ok {
		return fmt.Errorf("block checksum mismatch: %w", errCorrupt)
	}
	t.done, all = all[:c[3]*digestSize], all[c[3]*digestSize:]
	t.units, t.packs = all[:c[4]*digestSize], all[c[4]*digestSize:]
	return nil
}

// read returns the n bytes at off, from blocks whose CRC matched; ok is
// false when one did not (t is then corrupt) or could not be read.
func (t *table) read(off, n int) ([]byte, bool) { return t.readWith(off, n, nil) }

// probeMemo is what one binary search keeps of the blocks it reads below
// the top levels (whose keys the table caches, topKey): the blocks of this
// one key, kept only while the search stays in them.
type probeMemo struct {
	b   int
	blk []byte // block b: buf, or a cached block
	buf *[blockSize]byte
}

// probeBufs are the probeMemos' buffers. A lookup's deeper probes read
// blocks no other lookup wants; one fresh 4 KiB buffer per lookup made
// most of a small create's garbage on a store of 2 million chunks (13 of
// 44 MB allocated, raising the GC's heap goal; results/2026-12-03-warmcreate.md).
var probeBufs = sync.Pool{New: func() any { return new([blockSize]byte) }}

// release returns m's buffer; what m's reads returned is invalid after it.
func (m *probeMemo) release() {
	if m != nil && m.buf != nil {
		probeBufs.Put(m.buf)
		m.buf, m.blk = nil, nil
	}
}

// searchCachedLevels are the levels of a binary search whose keys the
// table caches: at most 2^8-1 per section.
const searchCachedLevels = 8

// maxCachedKeys bounds the keys a table caches: the top levels of its
// three sections.
const maxCachedKeys = 3 << searchCachedLevels

// readWith is read for a binary search (m nil: every block is cached).
func (t *table) readWith(off, n int, m *probeMemo) ([]byte, bool) {
	if t.corrupt.Load() || off < 0 || n < 0 || off+n > t.body {
		return nil, false
	}
	var out []byte
	for b := off / blockSize; len(out) < n; b++ {
		var blk []byte
		ok := true
		switch {
		case m == nil:
			blk, ok = t.block(b, true, nil)
		case m.blk != nil && m.b == b:
			blk = m.blk
		default:
			if m.buf == nil {
				m.buf = probeBufs.Get().(*[blockSize]byte)
			}
			// One buffer per search, valid until its next read.
			blk, ok = t.block(b, false, m.buf[:])
			m.b, m.blk = b, blk
		}
		if !ok {
			return nil, false
		}
		start := max(off-b*blockSize, 0)
		if out == nil && start+n <= len(blk) {
			// Within one block: no copy. Cached blocks never change; m's
			// buffer does at its next read, which every caller waits for.
			return blk[start : start+n], true
		}
		if out == nil {
			out = make([]byte, 0, n)
		}
		out = append(out, blk[start:min(len(blk), start+n-len(out))]...)
	}
	return out, true
}

// block returns block b, checked; keep puts it in the table's cache,
// otherwise it is read into buf when that has room.
func (t *table) block(b int, keep bool, buf []byte) ([]byte, bool) {
	t.mu.Lock()
	blk, ok := t.blocks[b]
	t.mu.Unlock()
	if ok {
		return blk, true
	}
	n := min(blockSize, t.body-b*blockSize)
	if !keep && cap(buf) >= n {
		blk = buf[:n]
	} else {
		blk = make([]byte, n)
	}
	if _, err := t.f.ReadAt(blk, int64(b)*blockSize); err != nil ||
		crc32.Checksum(blk, crcTable) != le32(t.crcs[4*b:]) {
		t.corrupt.Store(true)
		return nil, false
	}
	if !keep {
		return blk, true
	}
	t.mu.Lock()
	if len(t.blocks) >= maxCachedBlocks {
		clear(t.blocks) // crude, and bounded
	}
	t.blocks[b] = blk
	t.mu.Unlock()
	return blk, true
}

// section returns the n bytes at off read at once, every block checked (for
// passes over a whole table: merges, Verify, Len).
func (t *table) section(off, n int) ([]byte, error) {
	if t.corrupt.Load() {
		return nil, fmt.Errorf("index file %s: %w", t.name, errCorrupt)
	}
	first, last := off/blockSize, (off+n-1)/blockSize
	if n == 0 {
		return nil, nil
	}
	buf := make([]byte, min((last+1)*blockSize, t.body)-first*blockSize)
	if _, err := t.f.ReadAt(buf, int64(first)*blockSize); err != nil {
		return nil, fmt.Errorf("index file %s: %w", t.name, err)
	}
	for b := first; b <= last; b++ {
		blk := buf[(b-first)*blockSize : min((b-first+1)*blockSize, len(buf))]
		if crc32.Checksum(blk, crcTable) != le32(t.crcs[4*b:]) {
			t.corrupt.Store(true)
			return nil, fmt.Errorf("index file %s: block checksum mismatch: %w", t.name, errCorrupt)
		}
	}
	start := off - first*blockSize
	return buf[start : start+n], nil
}

// chunkSection and frameSection are the whole tables, checked.
func (t *table) chunkSection() ([]byte, error) { return t.section(t.cOff, t.nc*entrySize) }
func (t *table) frameSection() ([]byte, error) { return t.section(t.fOff, t.nf*entrySize) }

func (t *table) close() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
}

func (t *table) nChunks() int { return t.nc }
func (t *table) nBlobs() int  { return t.nb }
func (t *table) nFrames() int { return t.nf }

// search returns the first of the n entries at off whose key is >= k; ok
// is false when t is corrupt.
func (t *table) search(off, n int, k []byte) (int, *probeMemo, bool) {
	m := &probeMemo{}
	probes := 0
	i := sort.Search(n, func(i int) bool {
		probes++
		var e []byte
		ok := true
		if probes <= searchCachedLevels {
			e, ok = t.topKey(off+i*entrySize, m)
		} else {
			e, ok = t.readWith(off+i*entrySize, 32, m)
		}
		return !ok || bytes.Compare(e, k) >= 0
	})
	return i, m, !t.corrupt.Load()
}

// topKey returns the key at off, a probe of a search's top levels: the
// same few for every lookup, so the table keeps them, and only them. It
// kept their whole blocks: 4 KiB for a 32-byte key, 1 MiB for each big
// section of each file, 4 MB live in a small create on 2 million chunks.
func (t *table) topKey(off int, m *probeMemo) ([]byte, bool) {
	t.mu.Lock()
	e, ok := t.keys[off]
	t.mu.Unlock()
	if ok {
		return e, true
	}
	if e, ok = t.readWith(off, 32, m); !ok {
		return nil, false
	}
	e = bytes.Clone(e)
	t.mu.Lock()
	if len(t.keys) >= maxCachedKeys {
		clear(t.keys) // crude, and bounded
	}
	t.keys[off] = e
	t.mu.Unlock()
	return e, true
}

// entry returns entry i of the section at off, checked.
// m, from the search that found i, or nil (the block is cached).
func (t *table) entry(off, i int, m *probeMemo) ([]byte, bool) {
	return t.readWith(off+i*entrySize, entrySize, m)
}

// tchunk is a chunk entry: the chunk is held by blob number blob at offset.
type tchunk struct {
	blob         uint32
	offset, size uint32
}

// chunkHolders calls fn for every entry of chunk id, units first, until fn
// returns false.
func (t *table) chunkHolders(id format.ChunkID, fn func(tchunk) bool) {
	i, m, ok := t.search(t.cOff, t.nc, id[:])
	defer m.release()
	for ; ok && i < t.nc; i++ {
		e, ok := t.entry(t.cOff, i, m)
		if !ok || !bytes.Equal(e[:32], id[:]) {
			return
		}
		if !fn(tchunk{blob: le32(e[32:]), offset: le32(e[36:]), size: le32(e[40:])}) {
			return
		}
	}
}

// blobAt returns blob n's digest, record offset and flags.
func (t *table) blobAt(n uint32) (d format.ChunkID, rec uint64, flags uint32, err error) {
	if int(n) >= t.nb {
		return d, 0, 0, fmt.Errorf("index file %s: blob %d of %d: %w", t.name, n, t.nb, errCorrupt)
	}
	e, ok := t.entry(t.bOff, int(n), nil)
	if !ok {
		return d, 0, 0, fmt.Errorf("index file %s: block checksum mismatch: %w", t.name, errCorrupt)
	}
	copy(d[:], e[:32])
	return d, binary.LittleEndian.Uint64(e[32:]), le32(e[40:]), nil
}

// findBlob returns the number of the blob with digest d.
func (t *table) findBlob(d format.ChunkID) (uint32, bool) {
	i, m, ok := t.search(t.bOff, t.nb, d[:])
	defer m.release()
	if !ok || i >= t.nb {
		return 0, false
	}
	e, ok := t.entry(t.bOff, i, m)
	return uint32(i), ok && bytes.Equal(e[:32], d[:])
}

// findFrame returns the kind and ref of frame key.
func (t *table) findFrame(key format.ChunkID) (kind uint32, ref uint64, ok bool) {
	i, m, ok := t.search(t.fOff, t.nf, key[:])
	defer m.release()
	if !ok || i >= t.nf {
		return 0, 0, false
	}
	e, ok := t.entry(t.fOff, i, m)
	if !ok || !bytes.Equal(e[:32], key[:]) {
		return 0, 0, false
	}
	return le32(e[40:]), binary.LittleEndian.Uint64(e[32:]), true
}

// record decodes the frame record at off.
func (t *table) record(off uint64) (format.Frame, error) {
	f, _, err := t.rawRecord(off)
	return f, err
}

// rawRecord decodes the frame record at off and returns it with its bytes
// (length included; valid until t's next read), which a merge copies.
func (t *table) rawRecord(off uint64) (format.Frame, []byte, error) {
	if off > uint64(t.rLen) || uint64(t.rLen)-off < 4 {
		return format.Frame{}, nil, fmt.Errorf("index file %s: record %d beyond %d: %w", t.name, off, t.rLen, errCorrupt)
	}
	l, ok := t.read(t.rOff+int(off), 4)
	if !ok {
		return format.Frame{}, nil, fmt.Errorf("index file %s: block checksum mismatch: %w", t.name, errCorrupt)
	}
	n := uint64(le32(l))
	if n > maxRecordLen || uint64(t.rLen)-off-4 < n {
		return format.Frame{}, nil, fmt.Errorf("index file %s: record %d of %d bytes: %w", t.name, off, n, errCorrupt)
	}
	b, ok := t.read(t.rOff+int(off), 4+int(n))
	if !ok {
		return format.Frame{}, nil, fmt.Errorf("index file %s: block checksum mismatch: %w", t.name, errCorrupt)
	}
	pi, err := format.DecodePackIndex(b[4:])
	if err != nil || len(pi.Frames) != 1 {
		return format.Frame{}, nil, fmt.Errorf("index file %s: record %d: %v: %w", t.name, off, err, errCorrupt)
	}
	return pi.Frames[0], b, nil
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

// eachDigest calls fn for each 32-byte digest (or pair, when sz is
// packSize) of sec.
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
