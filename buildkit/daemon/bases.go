package daemon

import (
	"context"

	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/worker"
	"github.com/moby/buildkit/worker/base"

	"github.com/oci2/oci2/buildkit/basesource"
	"github.com/oci2/oci2/buildkit/exporter"
)

// LabelBaseImages on a worker tells frontends (BUILDKIT_WORKERS) that the
// daemon builds on OCIv2 images itself.
const LabelBaseImages = "org.oci2.base-images"

// registerBases replaces the worker's docker-image source with one that
// also builds on the oci2 store's OCIv2 images, and registers oci2://. The
// base worker's ResolveOp hands its SourceManager to every source op, so
// this reaches every build. Workers that are not BuildKit's base worker
// keep the stock behaviour. Every base unpacked seeds the worker's export
// caches.
func (d *Daemon) registerBases(w worker.Worker, caches exporter.Caches) *basesource.Source {
	bw, ok := w.(*base.Worker)
	if !ok || bw.ImageSource == nil {
		bklog.L.Warnf("oci2 worker %s (%T): no OCIv2 base images", w.ID(), w)
		return nil
	}
	src := basesource.New(basesource.Options{
		Stock:  bw.ImageSource,
		Store:  d.state.Store,
		Guard:  d.state.Read,
		Cache:  bw.CacheMgr,
		Caches: caches,

		WithIndex: d.state.WithIndex,
		Hosts:     d.opt.Hosts,
		Remotes:   d.remotes,
	})
	bw.SourceManager.Register(src)
	return src
}

// ResolveSourceMetadata answers from the oci2 store first (an OCIv2 image
// it holds); everything else is the worker's. The frontend bridge asks the
// default worker, which is this wrapper, so this one method serves every
// frontend's image-config requests.
func (w *oci2Worker) ResolveSourceMetadata(ctx context.Context, op *pb.SourceOp, opt sourceresolver.Opt,
	sm *session.Manager, jobCtx solver.JobContext) (*sourceresolver.MetaResponse, error) {
	next := func(ctx context.Context) (*sourceresolver.MetaResponse, error) {
		return w.Worker.ResolveSourceMetadata(ctx, op, opt, sm, jobCtx)
	}
	if w.bases == nil {
		return next(ctx)
	}
	var g session.Group
	if jobCtx != nil {
		g = jobCtx.Session()
	}
	return w.bases.ResolveMetadata(ctx, op, opt, sm, g, next)
}

// Labels adds LabelBaseImages when bases are on.
func (w *oci2Worker) Labels() map[string]string {
	l := w.Worker.Labels()
	if w.bases == nil {
		return l
	}
	out := make(map[string]string, len(l)+1)
	for k, v := range l {
		out[k] = v
	}
	out[LabelBaseImages] = "v1"
	return out
}
