package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/oci2/oci2/store/registry"
)

// basesBench builds on OCIv2 images (issue 10) side by side with stock
// BuildKit's path: FROM a large base held in the daemon's oci2 store
// against the same base given as a gzip OCI layout (oci-layout://), a
// rebuild, the type=oci2 export of the result against a cold export, and
// FROM v2 in a registry when the store holds v1 against a layered
// tar+gzip pull of v2 over v1.
type basesBench struct {
	r                                   *runner
	oci2, daemonBin, buildctl, registry string
	work                                string
	base, appBase, v1, v2               string // trees
	runs                                int
	logf                                func(string, ...any)
}

// basesResult is the part's figures.
type basesResult struct {
	Base                       string
	BaseBytes                  int64
	Runs                       int
	StoreFirst, StockFirst     stats // first build on a fresh daemon (solve, no export)
	StoreRebuild, StockRebuild stats // the same build again
	RebuildUnpacked            bool  // a store rebuild showed "oci2: unpacking"
	SeededExport, ColdExport   stats // the "exporting to" step
	Seeded, Cold               exportFigures
	SameImage                  bool // seeded and cold exports gave one manifest digest
	Pull                       *basesPull
	Failures                   []string
}

// exportFigures are the oci2 exporter's stats the report shows.
type exportFigures struct {
	Manifest string `json:"manifest"`
	Tree     struct {
		Layers       int   `json:"layers"`
		LayersCached int   `json:"layers_cached"`
		Walked       int64 `json:"walked"`
	} `json:"tree"`
	Cache struct {
		Files    int64 `json:"files"`
		Hits     int64 `json:"hits"`
		HitBytes int64 `json:"hit_bytes"`
	} `json:"cache"`
}

// basesPull is FROM v2 in a registry when the daemon's store holds v1.
type basesPull struct {
	V1, V2       string
	Wall         stats             // first build (solve) on a fresh daemon
	Seen         registry.Snapshot // at the proxy in front of the registry
	Summary      string            // the daemon's own line under FROM
	Rebuild      registry.Snapshot // the same build again
	Layered      registry.Snapshot // a layered tar+gzip pull of v2 over v1
	LayeredWhole registry.Snapshot // ... and of v2 into an empty store
}

const basesApp = "application data of the oci2 bench\n"

func (b *basesBench) run(ctx context.Context) *basesResult {
	res := &basesResult{Base: filepath.Base(b.base), Runs: b.runs}
	fail := func(what string, err error) {
		b.logf("bases: %s: FAILED: %v", what, err)
		res.Failures = append(res.Failures, fmt.Sprintf("bases %s: %v", what, err))
	}
	info, err := describeTree(res.Base, b.base)
	if err != nil {
		fail("base tree", err)
		return res
	}
	res.BaseBytes = info.LogicalBytes
	store, layout, digest, err := b.prepareBase(ctx)
	if err != nil {
		fail("preparing the base", err)
		return res
	}
	ctxDir := filepath.Join(b.work, "context")
	if err := writeDockerfile(filepath.Join(ctxDir, "store"), "FROM bench/base\nCOPY app.txt /opt/app/app.txt\n"); err != nil {
		fail("context", err)
		return res
	}
	_ = writeDockerfile(filepath.Join(ctxDir, "stock"), "FROM bigbase\nCOPY app.txt /opt/app/app.txt\n")
	if err := os.WriteFile(filepath.Join(ctxDir, "app.txt"), []byte(strings.Repeat(basesApp, 100)), 0o644); err != nil {
		fail("context", err)
		return res
	}
	stockArgs := []string{"--oci-layout", "bigbase=" + layout, "--opt", "context:bigbase=oci-layout://bigbase@" + digest}
	var sf, sr, kf, kr, se, ce []sample
	for i := range b.runs {
		for j := range 2 {
			if (i+j)%2 == 0 {
				if err := b.storeRun(ctx, res, store, ctxDir, i, &sf, &sr, &se, &ce); err != nil {
					fail(fmt.Sprintf("store run %d", i+1), err)
				}
			} else if err := b.stockRun(ctx, ctxDir, stockArgs, i, &kf, &kr); err != nil {
				fail(fmt.Sprintf("stock run %d", i+1), err)
			}
		}
	}
	res.StoreFirst, res.StoreRebuild, res.StockFirst, res.StockRebuild = summarize(sf), summarize(sr), summarize(kf), summarize(kr)
	res.SeededExport, res.ColdExport = summarize(se), summarize(ce)
	os.RemoveAll(store)
	if b.v1 != "" && ctx.Err() == nil {
		p, err := b.pull(ctx, ctxDir)
		if err != nil {
			fail("registry pull", err)
		}
		res.Pull = p
	}
	return res
}

// prepareBase makes the base once: an oci2 store holding it as bench/base
// (copied into each daemon's root) and a gzip OCI layout of it.
func (b *basesBench) prepareBase(ctx context.Context) (store, layout, digest string, err error) {
	store, layout = filepath.Join(b.work, "base-store"), filepath.Join(b.work, "base-layout")
	b.logf("bases: oci2 create and export (gzip layout) of %s", filepath.Base(b.base))
	digest, err = gzipLayout(ctx, b.r, b.oci2, b.base, store, "bench/base", layout)
	return store, layout, digest, err
}

// daemonWithStore starts a fresh daemon in dir whose oci2 store is a copy
// of store (hardlinked: blobs are immutable).
func (b *basesBench) daemonWithStore(ctx context.Context, dir, store, conf string) (*daemon, error) {
	os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "root"), 0o700); err != nil {
		return nil, err
	}
	if s := b.r.cmd(ctx, "cp", "-al", store, filepath.Join(dir, "root", "oci2")); s.Err != nil {
		return nil, s.Err
	}
	return startDaemonConfig(ctx, b.daemonBin, b.buildctl, dir, conf)
}

// storeRun: FROM the store's base, first build and rebuild, then the
// type=oci2 export (seeded by the unpack) and a cold export of the same
// result (daemon restarted without its files cache).
func (b *basesBench) storeRun(ctx context.Context, res *basesResult, store, ctxDir string, run int,
	first, rebuild, seeded, cold *[]sample) error {
	dir := filepath.Join(b.work, fmt.Sprintf("store-%d", run))
	defer os.RemoveAll(dir)
	d, err := b.daemonWithStore(ctx, dir, store, "")
	if err != nil {
		return err
	}
	defer d.stop()
	df := filepath.Join(ctxDir, "store")
	b1 := d.build(ctx, ctxDir, df, "")
	if b1.Err != nil {
		return b1.Err
	}
	b2 := d.build(ctx, ctxDir, df, "")
	if b2.Err != nil {
		return b2.Err
	}
	*first, *rebuild = append(*first, sample{Wall: b1.Wall}), append(*rebuild, sample{Wall: b2.Wall})
	res.RebuildUnpacked = res.RebuildUnpacked || strings.Contains(string(b2.Progress), "oci2: unpacking")
	b.logf("bases run %d/%d store: first build %6.2fs, rebuild %6.2fs", run+1, b.runs, b1.Wall.Seconds(), b2.Wall.Seconds())

	e1, f1, err := b.export(ctx, d, ctxDir, df, "bench/app", dir)
	if err != nil {
		return err
	}
	d.stop()
	if err := os.RemoveAll(filepath.Join(d.root, "oci2-filescache")); err != nil {
		return err
	}
	if d, err = startDaemonConfig(ctx, b.daemonBin, b.buildctl, dir, ""); err != nil {
		return err
	}
	defer d.stop()
	e2, f2, err := b.export(ctx, d, ctxDir, df, "bench/app-cold", dir)
	if err != nil {
		return err
	}
	*seeded, *cold = append(*seeded, sample{Wall: e1.Export}), append(*cold, sample{Wall: e2.Export})
	res.Seeded, res.Cold, res.SameImage = f1, f2, f1.Manifest != "" && f1.Manifest == f2.Manifest
	b.logf("bases run %d/%d store: type=oci2 export %6.2fs (seeded), %6.2fs (cold); same image: %v",
		run+1, b.runs, e1.Export.Seconds(), e2.Export.Seconds(), res.SameImage)
	return nil
}

// export builds with --output type=oci2 and returns the exporter's stats.
func (b *basesBench) export(ctx context.Context, d *daemon, ctxDir, df, name, dir string) (build, exportFigures, error) {
	var f exportFigures
	md := filepath.Join(dir, "metadata.json")
	e := d.build(ctx, ctxDir, df, "type=oci2,name="+name, "--metadata-file", md)
	if e.Err != nil {
		return e, f, e.Err
	}
	var m map[string]any
	raw, err := os.ReadFile(md)
	if err == nil {
		err = json.Unmarshal(raw, &m)
	}
	if err != nil {
		return e, f, fmt.Errorf("metadata: %w", err)
	}
	v, _ := m["oci2.stats"]
	var js []byte
	switch v := v.(type) {
	case string:
		js, _ = base64.StdEncoding.DecodeString(v)
	default:
		js, _ = json.Marshal(v)
	}
	var all []exportFigures
	if err := json.Unmarshal(js, &all); err != nil || len(all) != 1 {
		return e, f, fmt.Errorf("oci2.stats %q: %v", js, err)
	}
	return e, all[0], nil
}

// stockRun: the same build with the base as a gzip OCI layout (BuildKit's
// own puller and unpacker), first build and rebuild.
func (b *basesBench) stockRun(ctx context.Context, ctxDir string, extra []string, run int, first, rebuild *[]sample) error {
	dir := filepath.Join(b.work, fmt.Sprintf("stock-%d", run))
	defer os.RemoveAll(dir)
	d, err := startDaemonConfig(ctx, b.daemonBin, b.buildctl, dir, "")
	if err != nil {
		return err
	}
	defer d.stop()
	df := filepath.Join(ctxDir, "stock")
	b1 := d.build(ctx, ctxDir, df, "", extra...)
	if b1.Err != nil {
		return b1.Err
	}
	b2 := d.build(ctx, ctxDir, df, "", extra...)
	if b2.Err != nil {
		return b2.Err
	}
	*first, *rebuild = append(*first, sample{Wall: b1.Wall}), append(*rebuild, sample{Wall: b2.Wall})
	b.logf("bases run %d/%d stock (oci-layout, gzip): first build %6.2fs, rebuild %6.2fs", run+1, b.runs, b1.Wall.Seconds(), b2.Wall.Seconds())
	return nil
}

// pullSummary is the daemon's line under FROM after a pull.
var pullSummary = regexp.MustCompile(`oci2: (\d+) frames present, (\d+) rebuilt, (\d+) fetched \((\d+) bytes, (\d+) requests\)`)

// pull: the store holds v1; FROM v2, pushed to a registry on 127.0.0.1
// (counted by a proxy in front of it), then the same build again; and the
// layered tar+gzip pulls of v2 over v1 from the same registry.
func (b *basesBench) pull(ctx context.Context, ctxDir string) (*basesPull, error) {
	p := &basesPull{V1: filepath.Base(b.v1), V2: filepath.Base(b.v2)}
	host, stop, err := startRegistry(b.registry, filepath.Join(b.work, "registry"))
	if err != nil {
		return p, err
	}
	defer stop()
	var st registry.Stats
	proxy, stopProxy, err := countingProxy(host, &st)
	if err != nil {
		return p, err
	}
	defer stopProxy()
	s1, s2 := filepath.Join(b.work, "app-v1-store"), filepath.Join(b.work, "app-v2-store")
	defer os.RemoveAll(s1)
	defer os.RemoveAll(s2)
	b.logf("bases: oci2 create of %s and %s, push of v2", p.V1, p.V2)
	for _, s := range []sample{
		b.r.cmd(ctx, b.oci2, "--store", s1, "create", "--tag", "bench/app:v1", b.v1),
		b.r.cmd(ctx, b.oci2, "--store", s2, "create", "--tag", "bench/app:v2", b.v2),
		b.r.cmd(ctx, b.oci2, "--store", s2, "push", "bench/app:v2", host+"/bench/app:v2"),
	} {
		if s.Err != nil {
			return p, s.Err
		}
	}
	df := filepath.Join(ctxDir, "pull")
	if err := writeDockerfile(df, "FROM "+proxy+"/bench/app:v2\nCOPY app.txt /opt/app/app.txt\n"); err != nil {
		return p, err
	}
	dir := filepath.Join(b.work, "pull-daemon")
	defer os.RemoveAll(dir)
	d, err := b.daemonWithStore(ctx, dir, s1, fmt.Sprintf("[registry.%q]\n  http = true\n", proxy))
	if err != nil {
		return p, err
	}
	defer d.stop()
	before := st.Snapshot()
	b1 := d.build(ctx, ctxDir, df, "")
	if b1.Err != nil {
		return p, b1.Err
	}
	p.Wall, p.Seen = summarize([]sample{{Wall: b1.Wall}}), st.Snapshot().Sub(before)
	if m := pullSummary.FindString(string(b1.Progress)); m != "" {
		p.Summary = m
	}
	before = st.Snapshot()
	if b2 := d.build(ctx, ctxDir, df, ""); b2.Err != nil {
		return p, b2.Err
	}
	p.Rebuild = st.Snapshot().Sub(before)
	b.logf("bases: FROM v2 over v1: %s; proxy %+v; rebuild %+v", p.Summary, p.Seen, p.Rebuild)

	lay, err := newLayered(filepath.Join(b.work, "layered"), b.appBase, b.v1, b.v2)
	if err != nil {
		return p, fmt.Errorf("layered images: %w", err)
	}
	t, err := lay.counts(ctx, host)
	if err != nil {
		return p, err
	}
	p.Layered = t.PullV2
	p.LayeredWhole, err = counted(func(rt http.RoundTripper) error {
		return pullLayered(ctx, host+"/layered/app:v2", rt, nil, filepath.Join(b.work, "layered-whole"))
	})
	os.RemoveAll(filepath.Join(b.work, "layered"))
	os.RemoveAll(filepath.Join(b.work, "layered-whole"))
	return p, err
}

// countingProxy serves 127.0.0.1:PORT in front of the registry at host,
// counting every round trip and its bytes: what a daemon fetched.
func countingProxy(host string, st *registry.Stats) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: host})
	rp.Transport = registry.CountingTransport(http.DefaultTransport, st)
	srv := &http.Server{Handler: rp}
	go srv.Serve(l)
	return l.Addr().String(), func() { srv.Close() }, nil
}
