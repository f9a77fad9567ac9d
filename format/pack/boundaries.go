package pack

import (
	"encoding/binary"

	"github.com/oci2/oci2/format"
)

// below reports whether x < floor(z * 2^32 / avg), the content-defined cut
// test of SPEC.md §5.2 and §5.4, without overflow: for an integer n,
// n <= floor(q) exactly when n <= q, so the test is (x+1)*avg <= z*2^32.
func below(x uint32, z, avg uint64) bool {
	if z >= 1<<32 {
		return true
	}
	return (uint64(x)+1)*avg <= z<<32
}

// frameFull reports whether a chunk of size s must close the open frame
// before it is appended (SPEC.md §5.2 rule 1).
func frameFull(acc, s uint64) bool {
	return acc > 0 && acc+s > format.FrameMax
}

// closesFrame reports whether the chunk just appended closes its frame
// (SPEC.md §5.2 rule 3).
func closesFrame(id format.ChunkID, s uint64) bool {
	return s >= format.FrameAverage || below(binary.BigEndian.Uint32(id[0:4]), s, format.FrameAverage)
}

// closesPack reports whether the frame just appended (stored size z, first
// chunk first) closes the open pack whose stored size is now acc (SPEC.md
// §5.4).
func closesPack(acc uint64, z uint64, first format.ChunkID) bool {
	return acc >= format.PackMax ||
		(acc >= format.PackMin && below(binary.BigEndian.Uint32(first[4:8]), z, format.PackAverageExtra))
}

// packCutter groups frames into packs in stream order.
type packCutter struct {
	packs []format.PackIndex
	open  format.PackIndex
	acc   uint64
}

func (pc *packCutter) add(f format.Frame) {
	pc.open.Frames = append(pc.open.Frames, f)
	pc.acc += f.StoredSize
	if closesPack(pc.acc, f.StoredSize, f.Chunks[0].ID) {
		pc.close()
	}
}

func (pc *packCutter) close() {
	if len(pc.open.Frames) > 0 {
		pc.packs = append(pc.packs, pc.open)
	}
	pc.open, pc.acc = format.PackIndex{}, 0
}
