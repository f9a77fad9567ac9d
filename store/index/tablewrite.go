package index

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/oci2/oci2/format"
)

// tableBuilder collects the content of a new index file.
type tableBuilder struct {
	blobs  map[format.ChunkID]*bblob
	frames map[format.ChunkID]bframe
	done   map[format.ChunkID]bool
	units  map[format.ChunkID]bool
	packs  map[format.ChunkID]format.ChunkID
}

type bblob struct {
	f    format.Frame
	unit bool
}

// bframe is a frame to write: stored as its blob (f.Digest, which the
// builder must hold), or virtual or pending with its own record.
type bframe struct {
	kind uint32
	f    format.Frame
}

func newTableBuilder() *tableBuilder {
	return &tableBuilder{
		blobs:  make(map[format.ChunkID]*bblob),
		frames: make(map[format.ChunkID]bframe),
		done:   make(map[format.ChunkID]bool),
		units:  make(map[format.ChunkID]bool),
		packs:  make(map[format.ChunkID]format.ChunkID),
	}
}

func (b *tableBuilder) empty() bool {
	return len(b.blobs)+len(b.frames)+len(b.done)+len(b.units)+len(b.packs) == 0
}

// addBlob adds a blob; a unit stays one.
func (b *tableBuilder) addBlob(f format.Frame, unit bool) {
	if o, ok := b.blobs[f.Digest]; ok {
		o.unit = o.unit || unit
		return
	}
	b.blobs[f.Digest] = &bblob{f: f, unit: unit}
}

// addFrame adds a frame under key, keeping the better of two kinds (stored,
// then virtual, then pending).
func (b *tableBuilder) addFrame(key format.ChunkID, kind uint32, f format.Frame) {
	if o, ok := b.frames[key]; ok && o.kind <= kind {
		return
	}
	if kind == kindStored {
		b.addBlob(f, false)
	}
	b.frames[key] = bframe{kind: kind, f: f}
}

// write writes the index file into dir under a new unique name and returns
// it. The file is written aside and renamed into place, so readers see it
// whole or not at all; it is not synced: a file a crash truncates fails its
// checksum and is rebuilt.
func (b *tableBuilder) write(dir string) (string, error) { return writeTable(dir, b.encode) }

// writeTable writes an index file whose magic and sections encode writes
// (returning the footer's counts), adding the block CRCs and the footer as
// the bytes go by: see tableBuilder.write.
func writeTable(dir string, encode func(io.Writer) ([]byte, error)) (string, error) {
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // fails once renamed
	// Readable by every process that reads the store (CreateTemp makes 0600).
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing index file: %w", err)
	}
	bc := &blockCRCs{}
	w := bufio.NewWriterSize(io.MultiWriter(tmp, bc), 1<<20)
	counts, err := encode(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		crcs := bc.sums()
		h := crc32.New(crcTable)
		h.Write(crcs)
		h.Write(counts)
		tail := binary.LittleEndian.AppendUint32(append(crcs, counts...), h.Sum32())
		_, err = tmp.Write(append(tail, tableMagic...))
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("writing index file: %w", err)
	}
	name := newTableName()
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return "", fmt.Errorf("writing index file: %w", err)
	}
	return name, nil
}

// blockCRCs computes the CRC-32C of each blockSize block written to it.
type blockCRCs struct {
	crcs []byte
	cur  uint32
	n    int // bytes of the current block
}

func (c *blockCRCs) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		k := min(len(p), blockSize-c.n)
		c.cur = crc32.Update(c.cur, crcTable, p[:k])
		c.n += k
		p = p[k:]
		if c.n == blockSize {
			c.crcs = binary.LittleEndian.AppendUint32(c.crcs, c.cur)
			c.cur, c.n = 0, 0
		}
	}
	return total, nil
}

// sums returns the CRCs of every block, the last one partial.
func (c *blockCRCs) sums() []byte {
	if c.n > 0 {
		c.crcs = binary.LittleEndian.AppendUint32(c.crcs, c.cur)
		c.cur, c.n = 0, 0
	}
	return c.crcs
}

// encode writes the magic and the sections, and returns the footer's
// counts.
func (b *tableBuilder) encode(w io.Writer) ([]byte, error) {
	blobKeys := sortedKeys(b.blobs)
	blobNo := make(map[format.ChunkID]uint32, len(blobKeys))
	var recs bytes.Buffer
	recAt := func(f format.Frame) (uint64, error) {
		off := uint64(recs.Len())
		enc, err := (&format.PackIndex{Frames: []format.Frame{f}}).Encode()
		if err != nil {
			return 0, fmt.Errorf("frame %s: %w", f.Digest, err)
		}
		recs.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(enc))))
		recs.Write(enc)
		return off, nil
	}
	blobs := make([]byte, 0, len(blobKeys)*entrySize)
	type chunkEnt struct {
		id                 format.ChunkID
		unit               bool
		blob, offset, size uint32
	}
	var chunks []chunkEnt
	for i, d := range blobKeys {
		bb := b.blobs[d]
		blobNo[d] = uint32(i)
		off, err := recAt(bb.f)
		if err != nil {
			return nil, err
		}
		var flags uint32
		if bb.unit {
			flags = blobUnit
		}
		blobs = appendEntry(blobs, d, off, flags)
		var at uint32
		for _, c := range bb.f.Chunks {
			chunks = append(chunks, chunkEnt{id: c.ID, unit: bb.unit, blob: uint32(i), offset: at, size: c.Size})
			at += c.Size
		}
	}
	slices.SortFunc(chunks, func(a, b chunkEnt) int {
		if c := bytes.Compare(a.id[:], b.id[:]); c != 0 {
			return c
		}
		if a.unit != b.unit {
			if a.unit {
				return -1
			}
			return 1
		}
		return int(a.blob) - int(b.blob)
	})
	frames := make([]byte, 0, len(b.frames)*entrySize)
	for _, key := range sortedKeys(b.frames) {
		bf := b.frames[key]
		var ref uint64
		if bf.kind == kindStored {
			ref = uint64(blobNo[bf.f.Digest])
		} else {
			var err error
			if ref, err = recAt(bf.f); err != nil {
				return nil, err
			}
		}
		frames = appendEntry(frames, key, ref, bf.kind)
	}
	cs := make([]byte, 0, len(chunks)*entrySize)
	for _, c := range chunks {
		cs = append(cs, c.id[:]...)
		cs = binary.LittleEndian.AppendUint32(cs, c.blob)
		cs = binary.LittleEndian.AppendUint32(cs, c.offset)
		cs = binary.LittleEndian.AppendUint32(cs, c.size)
	}
	var done, units, packs []byte
	for _, d := range sortedKeys(b.done) {
		done = append(done, d[:]...)
	}
	for _, d := range sortedKeys(b.units) {
		units = append(units, d[:]...)
	}
	for _, d := range sortedKeys(b.packs) {
		p := b.packs[d]
		packs = append(append(packs, d[:]...), p[:]...)
	}
	foot := make([]byte, 0, 7*8)
	for _, n := range []int{len(chunks), len(b.blobs), len(b.frames), len(b.done), len(b.units), len(b.packs), recs.Len()} {
		foot = binary.LittleEndian.AppendUint64(foot, uint64(n))
	}
	for _, p := range [][]byte{[]byte(tableMagic), cs, blobs, frames, done, units, packs, recs.Bytes()} {
		if _, err := w.Write(p); err != nil {
			return nil, err
		}
	}
	return foot, nil
}

func appendEntry(b []byte, key format.ChunkID, ref uint64, v uint32) []byte {
	b = append(b, key[:]...)
	b = binary.LittleEndian.AppendUint64(b, ref)
	return binary.LittleEndian.AppendUint32(b, v)
}

func sortedKeys[V any](m map[format.ChunkID]V) []format.ChunkID {
	ks := make([]format.ChunkID, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b format.ChunkID) int { return bytes.Compare(a[:], b[:]) })
	return ks
}
