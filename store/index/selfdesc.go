package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
	"github.com/oci2/oci2/store"
)

// A unit describes itself (SPEC.md §8): after its zstd frame comes a zstd
// skippable frame, which decoders pass over, holding its chunk list, so a
// lost descriptor can be rebuilt from the blob (RepairUnits). The trailer is
//
//	skippable frame header (magic 0x184D2A5E, payload size, little endian)
//	for each chunk: its 32-byte sha256, its size (uint32, little endian)
//	the number of chunks (uint32, little endian), then unitTag
//
// so that it is found from the end of the blob. A unit whose trailer would
// take it past the zstd bound of its raw size (many tiny incompressible
// chunks) goes without: only its descriptor describes it.
const (
	skippableMagic = 0x184D2A5E
	unitTag        = "oci2unt1"
	trailerFixed   = 8 + 4 + len(unitTag) // header, count, tag
	trailerChunk   = 32 + 4
)

// withTrailer appends the trailer of chunks to a unit's zstd frame, if the
// result stays within the zstd bound of the raw size.
func withTrailer(zst []byte, chunks []format.ChunkRef, raw uint64) ([]byte, bool) {
	n := trailerFixed + trailerChunk*len(chunks)
	if uint64(len(zst)+n) > format.ZstdBound(raw) {
		return zst, false
	}
	out := make([]byte, 0, len(zst)+n)
	out = append(out, zst...)
	out = binary.LittleEndian.AppendUint32(out, skippableMagic)
	out = binary.LittleEndian.AppendUint32(out, uint32(n-8))
	for _, c := range chunks {
		out = append(out, c.ID[:]...)
		out = binary.LittleEndian.AppendUint32(out, c.Size)
	}
	out = binary.LittleEndian.AppendUint32(out, uint32(len(chunks)))
	return append(out, unitTag...), true
}

// UnitFromBlob returns the frame of a self-describing unit blob (stored, whose
// digest is d), checked: its chunks decode from it. ok is false for a blob
// that is not one.
func UnitFromBlob(d digest.Digest, stored []byte) (f format.Frame, ok bool, err error) {
	if len(stored) < trailerFixed || !bytes.HasSuffix(stored, []byte(unitTag)) {
		return format.Frame{}, false, nil
	}
	end := len(stored) - len(unitTag)
	count := uint64(binary.LittleEndian.Uint32(stored[end-4 : end]))
	size := uint64(trailerFixed) + trailerChunk*count
	if size > uint64(len(stored)) {
		return format.Frame{}, false, nil
	}
	t := stored[uint64(len(stored))-size:]
	if binary.LittleEndian.Uint32(t) != skippableMagic || uint64(binary.LittleEndian.Uint32(t[4:])) != size-8 {
		return format.Frame{}, false, nil
	}
	f = format.Frame{Encoding: format.EncodingZstd, StoredSize: uint64(len(stored)), Digest: format.Sum(stored)}
	if f.Digest.Digest() != d {
		return format.Frame{}, false, fmt.Errorf("blob %s: hashes to %s: %w", d, f.Digest, store.ErrDigestMismatch)
	}
	for p := t[8 : 8+trailerChunk*count]; len(p) > 0; p = p[trailerChunk:] {
		var id format.ChunkID
		copy(id[:], p[:32])
		f.Chunks = append(f.Chunks, format.ChunkRef{ID: id, Size: binary.LittleEndian.Uint32(p[32:])})
	}
	if _, err := pack.DecodeFrame(&f, stored, true); err != nil {
		return format.Frame{}, false, fmt.Errorf("unit %s: %w", d, err)
	}
	return f, true, nil
}

// RepairStore is what RepairUnits needs: blobs to list and read, and the
// unit descriptors to rebuild.
type RepairStore interface {
	store.Reader
	store.Lister
	store.Units
}

// RepairUnits writes the descriptor of every self-describing unit blob that
// has none (lost, or never written by a process killed in between) and
// returns how many it wrote. A blob that ends like a unit but does not
// decode as its trailer says is an error: the store is damaged.
func RepairUnits(ctx context.Context, st RepairStore) (int, error) {
	have, err := st.ListUnits(ctx)
	if err != nil {
		return 0, fmt.Errorf("repairing units: %w", err)
	}
	described := make(map[digest.Digest]bool, len(have))
	for _, d := range have {
		described[d] = true
	}
	maxUnit := int64(format.ZstdBound(format.MaxFrameRawSize))
	var todo []digest.Digest
	err = st.ListBlobs(ctx, func(i store.Info) error {
		if !described[i.Digest] && i.Size >= int64(trailerFixed) && i.Size <= maxUnit {
			todo = append(todo, i.Digest)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("repairing units: %w", err)
	}
	n := 0
	for _, d := range todo {
		b, err := st.ReadBlob(ctx, d, maxUnit)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return n, fmt.Errorf("repairing units: %w", err)
		}
		f, ok, err := UnitFromBlob(d, b)
		if err != nil {
			return n, fmt.Errorf("repairing units: %w", err)
		}
		if !ok {
			continue
		}
		desc, err := EncodeUnit(f)
		if err == nil {
			err = st.PutUnit(ctx, d, desc)
		}
		if err != nil {
			return n, fmt.Errorf("repairing unit %s: %w", d, err)
		}
		n++
	}
	return n, nil
}
