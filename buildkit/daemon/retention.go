package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/util/disk"

	"github.com/oci2/oci2/buildkit/exporter"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/admin"
)

// retentionInterval is how often the store is checked; a check that finds
// no new export and no age limit does nothing.
const retentionInterval = time.Minute

// retention enforces [oci2] keep-duration and keep-bytes on the store,
// which BuildKit's own gc, prune and du do not see. Only refs the exporter
// made (annotated with exporter.AnnotationExported) are ever removed by
// age or size; refs made by other tools (oci2 import, oci2 tag) are kept.
// Every run then collects the blobs no ref reaches: images exported
// without a name and writes that failed half-way.
type retention struct {
	state        *exporter.State
	keepBytes    int64         // 0: no size limit
	keepDuration time.Duration // 0: no age limit
	lastExports  int64
}

// newRetention makes the policy of cfg; its tick runs it.
func newRetention(state *exporter.State, cfg Config) (*retention, error) {
	kb, err := keepBytes(cfg.KeepBytes, cfg.Store)
	if err != nil {
		return nil, err
	}
	return &retention{state: state, keepBytes: kb, keepDuration: cfg.KeepDuration.Duration, lastExports: -1}, nil
}

// keepBytes resolves [oci2] keep-bytes: bytes as given, or a percentage of
// the size of the store's filesystem, which must then be measurable. On a
// failed or empty measure BuildKit's AsBytes gives its default cap, and
// ignoring the error gave no limit: either silently replaces the limit the
// operator set, so the daemon refuses to start instead.
func keepBytes(ks config.DiskSpace, store string) (int64, error) {
	if ks.Bytes != 0 || ks.Percentage == 0 {
		return ks.Bytes, nil
	}
	dstat, err := disk.GetDiskStat(store)
	if err != nil {
		return 0, fmt.Errorf("[oci2] keep-bytes = %d%%: measuring the filesystem of %s: %w", ks.Percentage, store, err)
	}
	if dstat.Total <= 0 {
		return 0, fmt.Errorf("[oci2] keep-bytes = %d%%: the filesystem of %s reports a size of %d", ks.Percentage, store, dstat.Total)
	}
	return ks.AsBytes(dstat), nil
}

func (r *retention) tick(ctx context.Context) {
	n := r.state.Exports()
	if n == r.lastExports && r.keepDuration == 0 {
		return
	}
	rep, err := r.run(ctx, time.Now())
	switch {
	case ctx.Err() != nil: // the daemon is stopping
		return
	case errors.Is(err, store.ErrLocked):
		bklog.L.Debugf("oci2 store busy, retention postponed")
		return
	case err != nil:
		bklog.L.Warnf("oci2 store retention: %v", err)
		return
	}
	r.lastExports = n
	if rep.removed > 0 || rep.freed > 0 {
		bklog.L.Infof("oci2 store retention: removed %d images, freed %d bytes", rep.removed, rep.freed)
	}
}

type retentionReport struct {
	removed int   // refs deleted
	freed   int64 // blob bytes deleted
}

// run applies the policy once, with no export running.
func (r *retention) run(ctx context.Context, now time.Time) (retentionReport, error) {
	var rep retentionReport
	err := r.state.Maintain(ctx, func(ctx context.Context) error {
		st := r.state.Store
		refs, err := managedRefs(ctx, st)
		if err != nil {
			return err
		}
		if r.keepDuration > 0 {
			for len(refs) > 0 && now.Sub(refs[0].exported) > r.keepDuration {
				if err := st.DeleteRef(ctx, refs[0].name); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				rep.removed++
				refs = refs[1:]
			}
		}
		for {
			g, err := admin.GC(ctx, st, admin.GCOptions{})
			if err != nil {
				return err
			}
			rep.freed += g.DeletedBytes
			if r.keepBytes <= 0 || g.LiveBytes <= r.keepBytes || len(refs) == 0 {
				return nil
			}
			// Oldest first, one at a time: images share most of their
			// frames, so what deleting one frees is known only after gc.
			if err := st.DeleteRef(ctx, refs[0].name); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			rep.removed++
			refs = refs[1:]
		}
	})
	return rep, err
}

type managedRef struct {
	name     string
	exported time.Time
}

// managedRefs returns the refs the exporter made, oldest first.
func managedRefs(ctx context.Context, st store.Refs) ([]managedRef, error) {
	refs, err := st.ListRefs(ctx)
	if err != nil {
		return nil, err
	}
	var out []managedRef
	for _, r := range refs {
		v, ok := r.Descriptor.Annotations[exporter.AnnotationExported]
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			continue
		}
		out = append(out, managedRef{name: r.Name, exported: t})
	}
	slices.SortStableFunc(out, func(a, b managedRef) int { return a.exported.Compare(b.exported) })
	return out, nil
}
