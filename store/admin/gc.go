package admin

import (
	"context"
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/index"
)

// GCStore is what GC needs of a store: besides blobs and refs, the unit
// descriptors it collects and compacts, durability of the units compaction
// writes, and the temp files of dead writers it removes.
type GCStore interface {
	store.Reader
	store.Writer
	store.Lister
	store.Refs
	store.Leaser
	store.Units
	store.Syncer
	store.IngestCleaner
	store.RootLister
	store.IndexHome // its index files are rewritten without what GC deletes
}

// GCOptions configure GC.
type GCOptions struct {
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// Wait for writers to finish instead of failing with ErrLocked.
	Wait bool
	// NoCompact keeps units that live chunks use only in small part
	// instead of rewriting those chunks into new units.
	NoCompact bool
	// Progress is called as blobs are deleted.
	Progress func(GCProgress)
}

// GCProgress reports deletion progress.
type GCProgress struct {
	Phase   string // "mark", "compact", "sweep"
	Done    int64
	Total   int64
	Deleted int64 // bytes deleted so far
}

// GCReport says what GC found and did (or, with DryRun, would do).
type GCReport struct {
	DryRun       bool  `json:"dry_run"`
	Refs         int   `json:"refs"`
	LiveBlobs    int64 `json:"live_blobs"`
	LiveBytes    int64 `json:"live_bytes"`
	Deleted      int64 `json:"deleted_blobs"`
	DeletedBytes int64 `json:"deleted_bytes"`
	IngestFiles  int   `json:"ingest_files"` // temp files of interrupted writes removed
	// Units kept and unit descriptors deleted (SPEC.md §8).
	Units        int `json:"units"`
	UnitsDeleted int `json:"units_deleted"`
	// Compacted units were mostly dead: their live chunks were rewritten
	// into CompactedNew new units of CompactedNewBytes.
	Compacted         int   `json:"units_compacted"`
	CompactedNew      int   `json:"compacted_new_units"`
	CompactedNewBytes int64 `json:"compacted_new_bytes"`
}

// compactBelow is the share of a unit's raw bytes that must be live for GC
// to keep it as it is; below, its live chunks are rewritten (restic's prune).
const compactBelow = 0.5

// GC deletes every blob no ref reaches. It marks from the refs, and from the
// entries of the store's list that are not refs (store.RootLister) (image index
// -> manifests -> config, pack indexes, packs, and the frames each pack index
// names). A frame whose blob is missing is virtual (SPEC.md §8): for its
// chunks that no live frame holds, GC marks units holding them, the units
// holding most of them first. It sweeps everything else, unit descriptors
// before their blobs.
//
// Liveness is decided per frame and per unit. A unit whose live chunks are
// under half its raw bytes is compacted (unless NoCompact): its live chunks
// are written into new units first, then it is swept. Frames are never
// rewritten: a live frame is live whole.
//
// GC holds the store exclusively: writers hold leases while the blobs they
// store are not reachable from a ref yet, so GC never sees them half written.
// Any blob a ref reaches that cannot be read, and any chunk of a virtual
// frame that no blob holds, stops GC before it deletes anything (run Check,
// then remove the broken image).
func GC(ctx context.Context, st GCStore, opts GCOptions) (*GCReport, error) {
	release, err := st.Exclusive(ctx, opts.Wait)
	if err != nil {
		return nil, fmt.Errorf("locking store for gc: %w", err)
	}
	defer release()

	progress := opts.Progress
	if progress == nil {
		progress = func(GCProgress) {}
	}
	refs, err := st.ListRefs(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing refs: %w", err)
	}
	// Entries of the store's list that are not refs (another tool's,
	// shadowed duplicates) are kept too: deleting their blobs would leave
	// the layout naming blobs it does not have.
	extra, err := extraRoots(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("listing refs: %w", err)
	}
	progress(GCProgress{Phase: "mark", Total: int64(len(refs) + len(extra))})
	g, err := live(ctx, st, refs)
	if err != nil {
		return nil, fmt.Errorf("marking: %w", err)
	}
	if err := markExtra(ctx, st, g, extra); err != nil {
		return nil, fmt.Errorf("marking: %w", err)
	}
	rep := &GCReport{DryRun: opts.DryRun, Refs: len(refs)}

	present, err := presentBlobs(ctx, st)
	if err != nil {
		return nil, err
	}
	m, err := markUnits(ctx, st, g, present)
	if err != nil {
		return nil, fmt.Errorf("marking: %w", err)
	}
	if !opts.NoCompact {
		if err := m.compact(ctx, st, g, opts.DryRun, rep, progress); err != nil {
			return rep, err
		}
		// The new units must survive a power loss before the old go.
		if rep.CompactedNew > 0 {
			if err := st.Sync(ctx); err != nil {
				return rep, fmt.Errorf("compacting: %w", err)
			}
		}
	}

	var dead []store.Info
	for d, n := range present {
		if g.has(d) || m.keep[d] {
			rep.LiveBlobs++
			rep.LiveBytes += n
		} else {
			dead = append(dead, store.Info{Digest: d, Size: n})
		}
	}
	sort.Slice(dead, func(i, j int) bool { return dead[i].Digest < dead[j].Digest })
	if err := m.dropDescriptors(ctx, st, g, opts.DryRun, rep); err != nil {
		return rep, err
	}
	if dir := st.IndexDir(); dir != "" && !opts.DryRun {
		// Before the sweep: an index never offers a blob GC deleted.
		keep := func(id format.ChunkID) bool {
			d := id.Digest()
			_, ok := present[d]
			return ok && (g.has(d) || m.keep[d])
		}
		if err := index.Rewrite(ctx, dir, keep); err != nil {
			return rep, err
		}
	}
	total := int64(len(dead))
	for i, info := range dead {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if !opts.DryRun {
			if err := st.DeleteBlob(ctx, info.Digest); err != nil {
				return rep, fmt.Errorf("deleting %s: %w", info.Digest, err)
			}
		}
		rep.Deleted++
		rep.DeletedBytes += info.Size
		progress(GCProgress{Phase: "sweep", Done: int64(i + 1), Total: total, Deleted: rep.DeletedBytes})
	}

	if !opts.DryRun {
		n, err := st.CleanIngest(ctx)
		if err != nil {
			return rep, fmt.Errorf("cleaning ingest files: %w", err)
		}
		rep.IngestFiles = n
	}
	return rep, nil
}

// presentBlobs returns every blob of st with its size.
func presentBlobs(ctx context.Context, st store.Lister) (map[digest.Digest]int64, error) {
	present := map[digest.Digest]int64{}
	err := st.ListBlobs(ctx, func(info store.Info) error {
		present[info.Digest] = info.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing blobs: %w", err)
	}
	return present, nil
}
