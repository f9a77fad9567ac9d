package maint

import (
	"context"
	"fmt"
	"sort"

	"github.com/oci2/oci2/chunkstore"
)

// GCStore is what GC needs of a store.
type GCStore interface {
	chunkstore.Reader
	chunkstore.Lister
	chunkstore.Refs
	chunkstore.Leaser
}

// IngestCleaner is implemented by stores that keep temporary files of
// interrupted writes (chunkstore/local). GC calls it, except in a dry run,
// while it holds the store exclusively.
type IngestCleaner interface {
	// CleanIngest removes the temp files of dead writers and counts them.
	CleanIngest(ctx context.Context) (int, error)
}

// GCOptions configure GC.
type GCOptions struct {
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// Wait for writers to finish instead of failing with ErrLocked.
	Wait bool
	// Progress is called as blobs are deleted.
	Progress func(GCProgress)
}

// GCProgress reports deletion progress.
type GCProgress struct {
	Phase   string // "mark", "sweep"
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
}

// GC deletes every blob no ref reaches. It marks from the refs (image index
// -> manifests -> config, pack indexes, packs, and the frames each pack index
// names) and sweeps everything else.
//
// The local store keeps frames, not packs, and a frame is live as soon as one
// live pack index names it, so liveness is decided per frame and a sweep frees
// exactly the dead frames: unlike stores that pack many chunks into files,
// no pack has to be rewritten to reclaim space, so there is no compaction.
//
// GC holds the store exclusively: writers hold leases while the blobs they
// store are not reachable from a ref yet, so GC never sees them half written.
// Any blob a ref reaches that cannot be read stops GC before it deletes
// anything (run Check, then remove the broken image).
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
	progress(GCProgress{Phase: "mark", Total: int64(len(refs))})
	g, err := live(ctx, st, refs)
	if err != nil {
		return nil, fmt.Errorf("marking: %w", err)
	}
	rep := &GCReport{DryRun: opts.DryRun, Refs: len(refs)}

	var dead []chunkstore.Info
	err = st.ListBlobs(ctx, func(info chunkstore.Info) error {
		if g.has(info.Digest) {
			rep.LiveBlobs++
			rep.LiveBytes += info.Size
		} else {
			dead = append(dead, info)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing blobs: %w", err)
	}
	sort.Slice(dead, func(i, j int) bool { return dead[i].Digest < dead[j].Digest })
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

	if c, ok := st.(IngestCleaner); ok && !opts.DryRun {
		n, err := c.CleanIngest(ctx)
		if err != nil {
			return rep, fmt.Errorf("cleaning ingest files: %w", err)
		}
		rep.IngestFiles = n
	}
	return rep, nil
}
