package basesource

import (
	"context"
	"fmt"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/buildkit/cache"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/snapshot"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/source"
	"github.com/moby/buildkit/source/containerimage"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/util/resolver"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/unpack"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/framesource"
	"github.com/oci2/oci2/store/index"
)

// CacheKeyPrefix starts the cache key of an OCIv2 base: the rest is its
// root tree digest. A snapshot is committed only after every tree object
// and chunk was verified against that root, so the key cannot be poisoned
// by a bad pull (the stock source's warning against config diff_ids as keys
// does not apply), and images that differ only in config share a snapshot.
const CacheKeyPrefix = "oci2.v1:"

// instance is one image source vertex: an OCIv2 base of the store, or else
// the stock instance.
type instance struct {
	src      *Source
	id       *containerimage.ImageIdentifier
	sm       *session.Manager
	stock    source.SourceInstance // nil for oci2://
	explicit bool

	once  sync.Once
	found *Base // what the store holds
	base  *Base // the OCIv2 base, once CacheKey chose it; nil: the stock path
	err   error
}

// lookup finds the image in the store once. A name without a digest is not
// looked up in the store when the build asked to pull (--pull).
func (i *instance) lookup(ctx context.Context) (*Base, error) {
	i.once.Do(func() {
		ref := i.id.Reference
		if ref.Digest() == "" && i.id.ResolveMode == resolver.ResolveModeForcePull && !i.explicit {
			i.err = fmt.Errorf("%s: pull requested: %w", ref, store.ErrNotFound)
			return
		}
		i.found, i.err = Lookup(ctx, i.src.opt.Store, ref.String(), i.id.Platform)
	})
	return i.found, i.err
}

// CacheKey chooses the path: the store's OCIv2 image, else the stock
// source; when the stock source finds nothing for the platform (the mark
// of an OCIv2 index) or the source is oci2://, the image is pulled into
// the store (raw LLB that did not resolve its image first).
func (i *instance) CacheKey(ctx context.Context, jobCtx solver.JobContext, index int) (string, string, solver.CacheOpts, bool, error) {
	b, err := i.lookup(ctx)
	if err != nil && absent(err) {
		if !i.explicit {
			k, pin, opts, done, serr := i.stock.CacheKey(ctx, jobCtx, index)
			if serr == nil || !cerrdefs.IsNotFound(serr) {
				return k, pin, opts, done, serr
			}
			if b, err = i.src.pull(ctx, i.id.Reference.String(), i.id.Platform, i.sm, group(jobCtx)); err != nil && absent(err) {
				return "", "", nil, false, serr
			}
		} else {
			b, err = i.src.pull(ctx, i.id.Reference.String(), i.id.Platform, i.sm, group(jobCtx))
		}
	}
	if err != nil {
		return "", "", nil, false, err
	}
	if i.id.LayerLimit != nil {
		return "", "", nil, false, fmt.Errorf("%s: an OCIv2 image has no layers to limit", i.id.Reference)
	}
	if c := i.id.Checksum; c != "" && c != b.Pin && c != b.Image.Descriptor.Digest {
		return "", "", nil, false, fmt.Errorf("image digest %s for %s does not match expected checksum %s", b.Pin, i.id.Reference, c)
	}
	i.base = b
	return CacheKeyPrefix + b.Root().String(), b.Pin.String(), nil, true, nil
}

// group is the build's session group (credentials), if any.
func group(jobCtx solver.JobContext) session.Group {
	if jobCtx == nil {
		return nil
	}
	return jobCtx.Session()
}

func (i *instance) Snapshot(ctx context.Context, jobCtx solver.JobContext) (cache.ImmutableRef, error) {
	b := i.base
	if b == nil {
		if i.stock == nil {
			return nil, fmt.Errorf("%s: no OCIv2 image chosen before the snapshot", i.id.Reference)
		}
		return i.stock.Snapshot(ctx, jobCtx)
	}
	g := group(jobCtx)
	p := newUnpackProgress(ctx, b)
	var ref cache.ImmutableRef
	err := i.src.withIndex(ctx, func(idx *index.Index) error {
		var err error
		ref, err = i.unpack(ctx, g, b, p, idx)
		return err
	})
	p.close(err)
	return ref, err
}

// unpack makes a new snapshot, writes the base's tree into it and commits
// it. Nothing is committed unless every entry was verified and written.
// idx locates the chunks of virtual frames (nil: the first one read
// indexes the store).
func (i *instance) unpack(ctx context.Context, g session.Group, b *Base, p *unpackProgress, idx *index.Index) (_ cache.ImmutableRef, err error) {
	mref, err := i.src.opt.Cache.New(ctx, nil, g, cache.CachePolicyRetain,
		cache.WithDescription("oci2 base "+i.id.Reference.String()), cache.WithRecordType(i.id.RecordType))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = mref.SetCachePolicyDefault()
			mref.Release(context.WithoutCancel(ctx))
		}
	}()
	m, err := mref.Mount(ctx, false, g)
	if err != nil {
		return nil, err
	}
	opts := unpack.Options{Force: true, Progress: p.update}
	if idmap := m.IdentityMapping(); idmap != nil {
		// a user-namespace-remapped daemon: snapshots hold host IDs, as
		// the stock puller's layers do (the exporter maps them back)
		opts.MapIDs = func(uid, gid uint32) (uint32, uint32, error) {
			hu, hg, err := idmap.ToHost(int(uid), int(gid))
			return uint32(hu), uint32(hg), err
		}
	}
	lm := snapshot.LocalMounter(m)
	dir, err := lm.Mount()
	if err != nil {
		return nil, err
	}
	cr := reader.NewChunkReader(b.Image, framesource.New(i.src.opt.Store, idx))
	st, err := unpack.Unpack(ctx, b.Image, cr, dir, opts)
	if uerr := lm.Unmount(); err == nil {
		err = uerr
	}
	if err != nil {
		return nil, fmt.Errorf("unpacking oci2 base %s: %w", i.id.Reference, err)
	}
	p.stats = st
	ref, err := mref.Commit(ctx)
	if err != nil {
		return nil, err
	}
	i.seed(ctx, ref, b, cr, g, st, p)
	return ref, nil
}

// seed gives the worker's export caches the base just unpacked, so that a
// type=oci2 export of a build on it walks and reads only the layers above
// it. A base the unpack did not write completely (entries skipped) is not
// seeded; nor, on any error, is anything: the export then walks it.
func (i *instance) seed(ctx context.Context, ref cache.ImmutableRef, b *Base, cr *reader.ChunkReader,
	g session.Group, st unpack.Stats, p *unpackProgress) {
	if st.Skipped > 0 {
		p.note(fmt.Sprintf("oci2: export caches not seeded (%d entries skipped by the unpack)", st.Skipped))
		return
	}
	ss, err := i.src.opt.Caches.Seed(ctx, ref, b.Image, cr, g)
	if err != nil {
		bklog.G(ctx).Warnf("oci2 base %s: %v", i.id.Reference, err)
		p.note("oci2: export caches not seeded: " + err.Error())
		return
	}
	if ss.Entries > 0 {
		p.note(fmt.Sprintf("oci2: export caches seeded (%d entries, %d files)", ss.Entries, ss.Files))
	}
}
