package index

import "sync/atomic"

// ScanStats counts what scans of the store (New, Refresh) read: the work
// the index files save. With index files that cover the store, a scan
// reads nothing but the list of refs and of unit descriptors.
type ScanStats struct {
	Manifests   int64 `json:"manifests"`    // image indexes and manifests read
	PackIndexes int64 `json:"pack_indexes"` // pack indexes read
	Units       int64 `json:"units"`        // unit descriptors read
	Frames      int64 `json:"frames"`       // frames looked up in the store
}

type scanCounters struct {
	manifests, packIndexes, units, frames atomic.Int64
}

func (c *scanCounters) stats() ScanStats {
	return ScanStats{
		Manifests:   c.manifests.Load(),
		PackIndexes: c.packIndexes.Load(),
		Units:       c.units.Load(),
		Frames:      c.frames.Load(),
	}
}

// processScans sums the scans of every Index of the process, so that a
// command can report them whichever package opened its index (see
// ProcessScanStats).
var processScans scanCounters

// count adds one to counter f of x and of the process.
func (x *Index) count(f func(*scanCounters) *atomic.Int64) {
	f(&x.scans).Add(1)
	f(&processScans).Add(1)
}

// ScanStats returns what x's scans have read so far.
func (x *Index) ScanStats() ScanStats { return x.scans.stats() }

// ProcessScanStats returns what the scans of every Index of this process
// have read so far (`oci2 --index-stats` prints it; tests of commands
// assert with it that index files spared a scan).
func ProcessScanStats() ScanStats { return processScans.stats() }
