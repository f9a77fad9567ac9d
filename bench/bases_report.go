package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// runBases runs the bases part (issue 10): it needs root, buildkitd-oci2,
// buildctl and the registry.
func runBases(ctx context.Context, c config, r *runner, oci2, timingTree, scratch string,
	logf func(string, ...any)) (*basesResult, string) {
	daemonBin, buildctl, reg := findTool(c.binDir, "buildkitd-oci2"), findTool(c.binDir, "buildctl"), findTool(c.binDir, "registry")
	switch {
	case daemonBin == "" || buildctl == "":
		return nil, "bases part skipped: no buildkitd-oci2 or buildctl (make build, scripts/build-tools.sh)"
	case os.Geteuid() != 0:
		return nil, "bases part skipped: buildkitd-oci2 with the OCI worker needs root"
	}
	work := filepath.Join(scratch, "bases")
	defer os.RemoveAll(work)
	b := &basesBench{r: r, oci2: oci2, daemonBin: daemonBin, buildctl: buildctl, registry: reg, work: work,
		base: timingTree, runs: c.runs, logf: logf}
	if !c.smoke {
		b.base = filepath.Join(c.corpus, c.largeBase)
		if t := strings.Split(c.registryTrees, ","); len(t) == 3 && reg != "" {
			b.appBase, b.v1, b.v2 = filepath.Join(c.corpus, t[0]), filepath.Join(c.corpus, t[1]), filepath.Join(c.corpus, t[2])
		}
	}
	logf("bases: FROM %s, %d runs", filepath.Base(b.base), b.runs)
	res := b.run(ctx)
	r.failed = append(r.failed, res.Failures...)
	return res, ""
}

// basesMarkdown renders the bases part.
func (rp *report) basesMarkdown(b *strings.Builder) {
	g := rp.Bases
	if g == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Building on OCIv2 images (issue 10)\n\n")
	w("`FROM %s` (%s) + `COPY app.txt`, each side on a fresh `buildkitd-oci2` (OCI worker) per run, sides interleaved; "+
		"median of %d run(s) (min - max). *oci2 store*: the base is an OCIv2 image in the daemon's oci2 store "+
		"(unpacked into a snapshot, which seeds the exporter's caches). *stock*: the same base as a gzip OCI layout "+
		"(`--oci-layout` + `context:bigbase=oci-layout://...`), pulled and unpacked by BuildKit's own code. "+
		"Times are the whole `buildctl build` without an exporter.\n\n", g.Base, mb(g.BaseBytes), g.Runs)
	w("| | oci2 store | stock (oci-layout, gzip) | oci2 / stock |\n|---|---:|---:|---:|\n")
	row := func(name string, o, s stats) {
		r := "-"
		if o.N > 0 && s.N > 0 {
			r = fmt.Sprintf("%.2fx", o.Median.Seconds()/s.Median.Seconds())
		}
		w("| %s | %s | %s | %s |\n", name, spread(o), spread(s), r)
	}
	row("first build on a fresh daemon", g.StoreFirst, g.StockFirst)
	row("rebuild, no change", g.StoreRebuild, g.StockRebuild)
	w("\n")
	unpacked := "no unpack"
	if g.RebuildUnpacked {
		unpacked = "the base was UNPACKED AGAIN"
	}
	w("Rebuild on the oci2 store side: %s, no registry configured (nothing fetched).\n\n", unpacked)
	if g.SeededExport.N > 0 {
		same := "the same manifest"
		if !g.SameImage {
			same = "DIFFERENT manifests"
		}
		w("`--output type=oci2` of that build, first export (the base's tree and extents seeded by its unpack): %s "+
			"(%d of %d layers from the tree cache, %d entries walked, %d of %d files from the files cache); "+
			"a cold export of the same result (daemon restarted without its files cache: every entry walked, "+
			"every file read and chunked; frames already in the store): %s (%d entries walked, %d files from the cache). "+
			"Seeded / cold: %.1f%%; %s (%s).\n\n",
			spread(g.SeededExport), g.Seeded.Tree.LayersCached, g.Seeded.Tree.Layers, g.Seeded.Tree.Walked,
			g.Seeded.Cache.Hits, g.Seeded.Cache.Files, spread(g.ColdExport), g.Cold.Tree.Walked, g.Cold.Cache.Hits,
			100*g.SeededExport.Median.Seconds()/max(g.ColdExport.Median.Seconds(), 1e-9), same, g.Seeded.Manifest)
	}
	if p := g.Pull; p != nil {
		w("`FROM 127.0.0.1:PORT/bench/app:v2` (%s) when the daemon's store holds v1 (%s), registry: distribution on "+
			"loopback behind a counting proxy. First build %s; the daemon's own line: `%s`. "+
			"At the proxy: %d requests, %s received. Rebuild: %d requests, %s. "+
			"A layered tar+gzip pull of v2 over v1 (base layer shared, top layers differ): %d requests, %s received "+
			"(into an empty store: %d requests, %s). oci2 / layered bytes: %.2fx.\n\n",
			p.V2, p.V1, spread(p.Wall), p.Summary, p.Seen.Requests, mb(p.Seen.BytesReceived),
			p.Rebuild.Requests, mb(p.Rebuild.BytesReceived), p.Layered.Requests, mb(p.Layered.BytesReceived),
			p.LayeredWhole.Requests, mb(p.LayeredWhole.BytesReceived),
			float64(p.Seen.BytesReceived)/max(float64(p.Layered.BytesReceived), 1))
	}
}

// basesGoals checks the targets of issue 10.
func (rp *report) basesGoals() []goal {
	g := rp.Bases
	if g == nil {
		return nil
	}
	var out []goal
	if g.StoreFirst.N > 0 && g.StockFirst.N > 0 {
		v := g.StoreFirst.Median.Seconds() / g.StockFirst.Median.Seconds()
		out = append(out, newGoal("10", "FROM "+g.Base+" in the oci2 store, first build: no slower than the stock oci-layout (gzip) path",
			v, v <= 1, "%.2fx the time"))
	}
	if g.SeededExport.N > 0 && g.ColdExport.N > 0 {
		v := g.SeededExport.Median.Seconds() / g.ColdExport.Median.Seconds()
		out = append(out, newGoal("10", "type=oci2 export of FROM "+g.Base+" + COPY, first build: <= 10% of a cold export",
			100*v, v <= 0.10 && g.SameImage, "%.1f%%"))
	}
	if p := g.Pull; p != nil && p.Layered.BytesReceived > 0 {
		v := float64(p.Seen.BytesReceived) / float64(p.Layered.BytesReceived)
		out = append(out, newGoal("10", "FROM v2 with v1 in the store: bytes fetched vs a layered tar+gzip pull of v2 over v1",
			v, v <= 1, "%.2fx"))
	}
	return out
}
