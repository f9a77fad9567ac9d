package mountfs

import (
	"context"
	"fmt"
	"sort"

	"github.com/oci2/oci2/format"
)

// blockSize is the allocation unit st_blocks counts in (an unpack onto
// ext4 allocates 4 KiB blocks for data and leaves zero extents as holes).
const blockSize = 4096

// ChunkViewer reads verified chunks: a *reader.ChunkReader, which checks
// every frame and chunk against the image's tree.
type ChunkViewer interface {
	ViewChunk(ctx context.Context, id format.ChunkID, fn func(b []byte) error) error
}

// extentOffsets returns the start offset of each of n's extents.
func (n *inode) extentOffsets() []uint64 {
	if p := n.offs.Load(); p != nil {
		return *p
	}
	offs := make([]uint64, len(n.e.Extents))
	var off uint64
	for i, x := range n.e.Extents {
		offs[i] = off
		off += x.Length
	}
	n.offs.Store(&offs)
	return offs
}

// readAt fills dest with the file's bytes at off (short at EOF) and returns
// how many it filled. Zero extents read as zeros without any I/O. touched,
// when not nil, is told about every data chunk read.
func (n *inode) readAt(ctx context.Context, cv ChunkViewer, dest []byte, off uint64, touched func(format.ChunkID)) (int, error) {
	size := n.e.Size
	if off >= size {
		return 0, nil
	}
	end := min(size, off+uint64(len(dest)))
	offs := n.extentOffsets()
	i := sort.Search(len(offs), func(i int) bool { return offs[i] > off }) - 1
	pos := off
	for ; pos < end; i++ {
		x := &n.e.Extents[i]
		xs := offs[i]
		lo, hi := pos-xs, min(x.Length, end-xs) // the part of this extent wanted
		out := dest[pos-off : pos-off+(hi-lo)]
		if x.Zero {
			clear(out)
		} else {
			if touched != nil {
				touched(x.Chunk)
			}
			err := cv.ViewChunk(ctx, x.Chunk, func(b []byte) error {
				if uint64(len(b)) != x.Length {
					return fmt.Errorf("chunk %s has %d bytes, its extent %d", x.Chunk, len(b), x.Length)
				}
				copy(out, b[lo:hi])
				return nil
			})
			if err != nil {
				return int(pos - off), fmt.Errorf("at offset %d: %w", xs, err)
			}
		}
		pos += hi - lo
	}
	return int(end - off), nil
}

// dataRegions calls fn for each maximal run of data extents, [start, end).
// Zero extents are multiples of 4 KiB at aligned offsets (SPEC.md §3), so
// every run starts block-aligned and ends aligned or at EOF.
func (n *inode) dataRegions(fn func(start, end uint64) bool) {
	var off uint64
	start, in := uint64(0), false
	for _, x := range n.e.Extents {
		if x.Zero {
			if in && !fn(start, off) {
				return
			}
			in = false
		} else if !in {
			start, in = off, true
		}
		off += x.Length
	}
	if in {
		fn(start, off)
	}
}

// blocks is the number of 512-byte blocks an unpacked copy allocates: its
// data rounded up to whole 4 KiB blocks, holes for the zero extents.
func (n *inode) blocks() uint64 {
	var b uint64
	n.dataRegions(func(start, end uint64) bool {
		b += (end - start + blockSize - 1) / blockSize * (blockSize / 512)
		return true
	})
	return b
}

// seekData returns the first offset >= off inside data, or false (ENXIO).
func (n *inode) seekData(off uint64) (uint64, bool) {
	res, ok := uint64(0), false
	n.dataRegions(func(start, end uint64) bool {
		if off < end {
			res, ok = max(off, start), true
			return false
		}
		return true
	})
	return res, ok
}

// seekHole returns the first offset >= off inside a hole; the end of the
// file counts as one.
func (n *inode) seekHole(off uint64) uint64 {
	res := off
	n.dataRegions(func(start, end uint64) bool {
		if res < start {
			return false
		}
		if res < end {
			res = end
		}
		return true
	})
	return min(res, n.e.Size)
}

// Fetching ahead: a file up to fetchWholeBytes is fetched whole on its
// first read (most files a program opens it reads whole); a larger one a
// window of fetchWindowBytes from each read's offset, so reading the header
// of a large binary does not fetch all of it.
const (
	fetchWholeBytes  = 8 << 20
	fetchWindowBytes = 4 << 20
)

// fetch gives fetch the data chunks a read at off is about to need.
func (n *inode) fetch(ctx context.Context, fetch func(context.Context, []format.ChunkID) error, off uint64) error {
	n.fetchMu.Lock()
	defer n.fetchMu.Unlock()
	if n.fetched {
		return nil
	}
	lo, hi := uint64(0), n.e.Size
	whole := n.e.Size <= fetchWholeBytes
	if !whole {
		lo, hi = off, off+fetchWindowBytes
	}
	var ids []format.ChunkID
	offs := n.extentOffsets()
	for i, x := range n.e.Extents {
		if !x.Zero && offs[i] < hi && offs[i]+x.Length > lo {
			ids = append(ids, x.Chunk)
		}
	}
	if len(ids) == 0 {
		n.fetched = whole
		return nil
	}
	err := fetch(ctx, ids)
	n.fetched = whole && err == nil
	return err
}
