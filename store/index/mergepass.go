package index

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/oci2/oci2/format"
)

// The passes of a merge (see merge.go): blobs, then frames, which name the
// blobs' new numbers, then chunks, which are written straight into the new
// file.

func (m *merger) cursors(sec func(*table) (off, n int)) []*cursor {
	cs := make([]*cursor, len(m.tabs))
	for i, t := range m.tabs {
		off, n := sec(t)
		cs[i] = newCursor(t, off, n)
	}
	return cs
}

// mergeBlobs writes the blob entries and their records, each blob once (a
// unit if any file says so, its record from the first file naming it), and
// fills blobMap.
func (m *merger) mergeBlobs() error {
	cs := m.cursors(func(t *table) (int, int) { return t.bOff, t.nb })
	m.blobMap = make([][]uint32, len(m.tabs))
	for i, t := range m.tabs {
		m.blobMap[i] = make([]uint32, t.nb)
	}
	return eachKey(cs, func(hs []int, key format.ChunkID) error {
		unit := false
		for _, i := range hs {
			e, _ := cs[i].entry()
			unit = unit || le32(e[40:])&blobUnit != 0
		}
		first := cs[hs[0]]
		e, _ := first.entry()
		f, raw, err := first.t.rawRecord(le64(e[32:]))
		if err == nil && f.Digest != key {
			err = fmt.Errorf("index file %s: blob %s has the record of %s: %w", first.t.name, key, f.Digest, errCorrupt)
		}
		if err != nil {
			return err
		}
		no := uint32(noBlob)
		if m.kept(key[:]) {
			var flags uint32
			no = uint32(m.nBlobs)
			if unit {
				flags = blobUnit
				no |= unitBit
			}
			if _, err := m.blobs.Write(appendEntry(nil, key, uint64(m.recs.n), flags)); err != nil {
				return err
			}
			if _, err := m.recs.Write(raw); err != nil {
				return err
			}
			m.nBlobs++
		}
		for _, i := range hs {
			m.blobMap[i][cs[i].i] = no
			cs[i].i++
		}
		return nil
	})
}

// mergeFrames writes the frame entries, each key once, keeping the best
// kind (stored, virtual, pending; the first file's among equals) as a
// tableBuilder does; a stored frame whose blob is dropped is pending.
func (m *merger) mergeFrames() error {
	cs := m.cursors(func(t *table) (int, int) { return t.fOff, t.nf })
	return eachKey(cs, func(hs []int, key format.ChunkID) error {
		var best uint32
		var ref uint64
		var rec []byte
		for _, i := range hs {
			kind, r, raw, err := m.frameOf(i, cs[i])
			if err != nil {
				return err
			}
			if best == 0 || kind < best {
				best, ref, rec = kind, r, bytes.Clone(raw)
			}
			cs[i].i++
		}
		if best != kindStored {
			ref = uint64(m.recs.n)
			if _, err := m.recs.Write(rec); err != nil {
				return err
			}
		}
		if _, err := m.frames.Write(appendEntry(nil, key, ref, best)); err != nil {
			return err
		}
		m.nFrames++
		return nil
	})
}

// frameOf returns the current frame entry of c (of file i) as the new file
// says it: its kind, and its blob's new number or its record.
func (m *merger) frameOf(i int, c *cursor) (kind uint32, ref uint64, rec []byte, err error) {
	e, _ := c.entry()
	kind, ref = le32(e[40:]), le64(e[32:])
	if kind != kindStored {
		_, rec, err = c.t.rawRecord(ref)
		return kind, 0, rec, err
	}
	if ref >= uint64(len(m.blobMap[i])) {
		return 0, 0, nil, fmt.Errorf("index file %s: frame blob %d: %w", c.t.name, ref, errCorrupt)
	}
	if no := m.blobMap[i][ref]; no != noBlob {
		return kindStored, uint64(no &^ unitBit), nil, nil
	}
	_, off, _, err := c.t.blobAt(uint32(ref))
	if err == nil {
		_, rec, err = c.t.rawRecord(off)
	}
	return kindPending, 0, rec, err
}

// mergeChunks writes the chunk entries of the blobs kept, with their new
// numbers, and returns how many: those of one chunk sorted as a
// tableBuilder sorts them (units first, then by blob), each once.
func (m *merger) mergeChunks(w io.Writer) (int, error) {
	type held struct{ no, offset, size uint32 }
	cs := m.cursors(func(t *table) (int, int) { return t.cOff, t.nc })
	var group []held
	n := 0
	out := make([]byte, 0, entrySize)
	err := eachKey(cs, func(hs []int, key format.ChunkID) error {
		group = group[:0]
		for _, i := range hs {
			for c := cs[i]; ; c.i++ {
				e, err := c.entry()
				if err != nil {
					return err
				}
				if e == nil || !bytes.Equal(e[:32], key[:]) {
					break
				}
				b := le32(e[32:])
				if int(b) >= len(m.blobMap[i]) {
					return fmt.Errorf("index file %s: chunk blob %d: %w", c.t.name, b, errCorrupt)
				}
				if no := m.blobMap[i][b]; no != noBlob {
					group = append(group, held{no: no, offset: le32(e[36:]), size: le32(e[40:])})
				}
			}
		}
		slices.SortFunc(group, func(a, b held) int {
			return cmp.Or(cmp.Compare(b.no&unitBit, a.no&unitBit), cmp.Compare(a.no, b.no), cmp.Compare(a.offset, b.offset))
		})
		for _, h := range slices.Compact(group) {
			out = append(out[:0], key[:]...)
			out = binary.LittleEndian.AppendUint32(out, h.no&^unitBit)
			out = binary.LittleEndian.AppendUint32(out, h.offset)
			out = binary.LittleEndian.AppendUint32(out, h.size)
			if _, err := w.Write(out); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
