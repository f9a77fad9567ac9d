package index

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/store"
)

// VerifyStore is what Verify compares index files with: blobs and unit
// descriptors.
type VerifyStore interface {
	store.Reader
	store.Units
}

// Mismatch is something an index file says that the store does not.
type Mismatch struct {
	File    string        // the index file
	Blob    digest.Digest // the blob or frame at fault, if one
	Message string
}

func (m Mismatch) String() string {
	s := "index file " + m.File
	if m.Blob != "" {
		s += ": " + m.Blob.String()
	}
	return s + ": " + m.Message
}

// Verify compares the index files of dir (SPEC.md §8.2) with st and
// returns every mismatch: a file that fails its checks; a blob an entry
// names that is not stored with the size its record says; a unit without a
// descriptor saying the same frame; a chunk entry that is not where its
// blob's record puts it; a frame whose key is not that of its record's
// chunks; and a frame of a pack index that a file says was scanned
// (scanned maps such pack indexes, those of the images being checked, to
// their frames) that no file holds. It changes nothing: Check runs it.
func Verify(ctx context.Context, dir string, st VerifyStore, scanned map[digest.Digest][]format.Frame) ([]Mismatch, error) {
	tabs, bad, err := readTables(dir, nil)
	if err != nil {
		return nil, err
	}
	defer closeTables(tabs)
	var out []Mismatch
	for _, n := range bad {
		out = append(out, Mismatch{File: n, Message: "fails its checksum or layout (the next write rebuilds the index)"})
	}
	done := map[format.ChunkID]bool{}
	for _, t := range tabs {
		ms, err := verifyTable(ctx, t, st)
		if err != nil {
			return nil, fmt.Errorf("verifying index file %s: %w", filepath.Join(dir, t.name), err)
		}
		out = append(out, ms...)
		eachDigest(t.done, digestSize, func(d, _ format.ChunkID) { done[d] = true })
	}
	for pi, frames := range scanned {
		id, err := format.FromDigest(pi)
		if err != nil || !done[id] {
			continue
		}
		for _, f := range frames {
			if !anyHasFrame(tabs, pack.FrameKey(f.Chunks)) {
				out = append(out, Mismatch{File: "*", Blob: f.Digest.Digest(),
					Message: fmt.Sprintf("frame of pack index %s, which the index says it scanned, is in no index file", pi)})
			}
		}
	}
	return out, nil
}

func anyHasFrame(tabs []*table, key format.ChunkID) bool {
	for _, t := range tabs {
		if _, _, ok := t.findFrame(key); ok {
			return true
		}
	}
	return false
}

// verifyTable checks one file's blobs, chunks and frames against st.
func verifyTable(ctx context.Context, t *table, st VerifyStore) ([]Mismatch, error) {
	var out []Mismatch
	cs, err := t.chunkSection()
	var fs []byte
	if err == nil {
		fs, err = t.frameSection()
	}
	if err != nil {
		return []Mismatch{{File: t.name, Message: fmt.Sprintf("fails its checks (the next write rebuilds the index): %v", err)}}, nil
	}
	bad := func(d format.ChunkID, format string, args ...any) {
		out = append(out, Mismatch{File: t.name, Blob: d.Digest(), Message: fmt.Sprintf(format, args...)})
	}
	blobs := make([]format.Frame, t.nBlobs())
	offs := make([][]uint32, t.nBlobs()) // offsets of each blob's chunks
	for i := range blobs {
		f, unit, err := t.blobFrame(uint32(i))
		if err != nil {
			d, _, _, _ := t.blobAt(uint32(i))
			bad(d, "record: %v", err)
			continue
		}
		blobs[i] = f
		offs[i] = make([]uint32, len(f.Chunks))
		var at uint32
		for j, c := range f.Chunks {
			offs[i][j] = at
			at += c.Size
		}
		if err := verifyBlob(ctx, st, f, unit); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			bad(f.Digest, "%v", err)
		}
	}
	for i := 0; i < t.nChunks(); i++ {
		e := cs[i*entrySize:]
		id, c := format.ChunkID(e[:32]), tchunk{blob: le32(e[32:]), offset: le32(e[36:]), size: le32(e[40:])}
		if int(c.blob) >= len(blobs) || !chunkAt(blobs[c.blob], offs[c.blob], id, c) {
			bad(id, "chunk entry (blob %d, offset %d, size %d) does not match its blob's record", c.blob, c.offset, c.size)
		}
	}
	for i := 0; i < t.nFrames(); i++ {
		e := fs[i*entrySize:]
		key, kind, ref := format.ChunkID(e[:32]), le32(e[40:]), le64(e[32:])
		var f format.Frame
		var err error
		switch kind {
		case kindStored:
			if ref >= uint64(len(blobs)) {
				err = fmt.Errorf("blob %d of %d", ref, len(blobs))
			} else {
				f = blobs[ref]
			}
		case kindVirtual, kindPending:
			f, err = t.record(ref)
		default:
			err = fmt.Errorf("unknown kind %d", kind)
		}
		if err == nil && pack.FrameKey(f.Chunks) != key {
			err = fmt.Errorf("its record's chunks have another key")
		}
		if err != nil {
			bad(key, "frame entry: %v", err)
		}
	}
	return out, nil
}

// verifyBlob checks that blob f is stored with its size and, for a unit,
// described as f.
func verifyBlob(ctx context.Context, st VerifyStore, f format.Frame, unit bool) error {
	info, err := st.Stat(ctx, f.Digest.Digest())
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("named by the index, not in the store")
	}
	if err != nil {
		return err
	}
	if info.Size != int64(f.StoredSize) {
		return fmt.Errorf("stored with %d bytes, the index says %d", info.Size, f.StoredSize)
	}
	if !unit {
		return nil
	}
	b, err := st.ReadUnit(ctx, f.Digest.Digest())
	if err != nil {
		return fmt.Errorf("a unit in the index: descriptor: %w", err)
	}
	u, err := DecodeUnit(f.Digest.Digest(), b)
	if err != nil {
		return fmt.Errorf("a unit in the index: %w", err)
	}
	if len(u.Chunks) != len(f.Chunks) || u.StoredSize != f.StoredSize || u.Encoding != f.Encoding {
		return fmt.Errorf("its descriptor describes another frame than the index")
	}
	for i := range u.Chunks {
		if u.Chunks[i] != f.Chunks[i] {
			return fmt.Errorf("its descriptor describes other chunks than the index")
		}
	}
	return nil
}

// chunkAt reports whether f, whose chunks start at offs, holds chunk id at
// c's offset with c's size.
func chunkAt(f format.Frame, offs []uint32, id format.ChunkID, c tchunk) bool {
	j, ok := slices.BinarySearch(offs, c.offset)
	return ok && f.Chunks[j].ID == id && f.Chunks[j].Size == c.size
}
