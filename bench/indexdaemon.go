package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The index part's daemon rows: a `type=oci2` export by buildkitd-oci2
// just after it started on the store (a daemon restart), of a build that
// COPYs a new small tree. Its time is the "exporting to" step of the
// build's progress (what the exporter does, the index opened or scanned
// included, the solve left out); its memory is the daemon's peak RSS over
// the build (VmHWM reset before it). With -buildkitd-baseline the same runs
// are made with an older daemon too ("before"), interleaved.

// daemonVariant is one buildkitd-oci2 binary measured.
type daemonVariant struct {
	label, bin string
}

// daemonIndexRow is one store's export figures for one daemon.
type daemonIndexRow struct {
	store, variant string
	export         stats // Wall: the "exporting to" step; MaxRSS: the daemon's peak
	build          stats // the whole buildctl command
}

// runDaemonIndex measures the export after a restart on every store of the
// index part (fresh ones get a new empty store per run).
func runDaemonIndex(ctx context.Context, c config, stores []indexStore, work string, logf func(string, ...any)) ([]daemonIndexRow, error) {
	bin, buildctl := findTool(c.binDir, "buildkitd-oci2"), findTool(c.binDir, "buildctl")
	if bin == "" || buildctl == "" || os.Geteuid() != 0 || !have("runc") {
		return nil, fmt.Errorf("the daemon rows need root, runc, buildkitd-oci2 and buildctl (-bin)")
	}
	variants := []daemonVariant{{label: "after", bin: bin}}
	if c.buildkitdBaseline != "" {
		variants = append([]daemonVariant{{label: "before", bin: c.buildkitdBaseline}}, variants...)
	}
	df := filepath.Join(work, "daemon-dockerfile")
	if err := os.MkdirAll(df, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(df, "Dockerfile"), []byte("FROM scratch\nCOPY . /\n"), 0o644); err != nil {
		return nil, err
	}
	var rows []daemonIndexRow
	for _, s := range stores {
		exports := make([][]sample, len(variants))
		builds := make([][]sample, len(variants))
		for i := range c.runs {
			for v, vr := range variants { // interleaved: both see the same load
				dir := s.dir
				if s.fresh {
					dir = filepath.Join(s.dir, fmt.Sprintf("daemon-%s-%d", vr.label, i))
				}
				e, b, err := daemonExport(ctx, vr.bin, buildctl, dir, filepath.Join(work, "daemon-"+s.name+"-"+vr.label), df, work)
				if err != nil {
					return rows, fmt.Errorf("%s store, %s: %w", s.name, vr.label, err)
				}
				logf("index bench: %s store, daemon %s: export %s, daemon peak %s", s.name, vr.label, secs(e.Wall), mib(e.MaxRSS))
				exports[v] = append(exports[v], e)
				builds[v] = append(builds[v], b)
			}
		}
		for v, vr := range variants {
			rows = append(rows, daemonIndexRow{store: s.name, variant: vr.label,
				export: summarize(exports[v]), build: summarize(builds[v])})
		}
	}
	return rows, nil
}

// daemonExport starts bin on store (its BuildKit state in root, kept across
// runs as a restarted daemon's is), builds a new small tree into the store
// and stops the daemon. It returns the export step with the daemon's peak
// RSS over the build, and the whole build.
func daemonExport(ctx context.Context, bin, buildctl, store, root, dfDir, work string) (export, build sample, err error) {
	conf := fmt.Sprintf("[oci2]\n  store = %q\n", store)
	d, err := startDaemonConfig(ctx, bin, buildctl, root, conf)
	if err != nil {
		return export, build, err
	}
	defer d.stop()
	tree := filepath.Join(work, "tree-daemon")
	os.RemoveAll(tree)
	if err := smallTree(tree, uint64(time.Now().UnixNano())); err != nil {
		return export, build, err
	}
	defer os.RemoveAll(tree)
	ref := fmt.Sprintf("bench.local/daemon:%d", time.Now().UnixNano())
	d.resetPeak()
	b := d.build(ctx, tree, dfDir, "type=oci2,name="+ref)
	if b.Err != nil {
		return export, build, b.Err
	}
	peak := d.peak()
	return sample{Wall: b.Export, MaxRSS: peak}, sample{Wall: b.Wall}, nil
}

// daemonIndexMarkdown is the daemon rows' table: ratios are to the empty
// store's row of the same daemon.
func daemonIndexMarkdown(rows []daemonIndexRow, c config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## `type=oci2` export by buildkitd-oci2 after a daemon restart\n\n")
	fmt.Fprintf(&b, "Each run starts the daemon on the store, builds `FROM scratch` + `COPY . /` of a new small tree "+
		"(the same 300 files, 2.4 MB) with buildctl and stops the daemon. Export: the \"exporting to\" step of the build's "+
		"progress (the index opened, or the store scanned, included); daemon peak: its VmHWM over the build "+
		"(reset just before it); median of %d runs (min - max), the largest peak. Ratios are to the same daemon's empty store.\n\n", c.runs)
	b.WriteString("| store | daemon | export | daemon peak RSS | export / empty (time, RSS) | whole build |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|\n")
	empty := map[string]stats{}
	for _, r := range rows {
		if _, ok := empty[r.variant]; !ok {
			empty[r.variant] = r.export
		}
		e := empty[r.variant]
		ratio := "-"
		if e.Median > 0 && e.MaxRSS > 0 {
			ratio = fmt.Sprintf("%.2fx, %.2fx", r.export.Median.Seconds()/e.Median.Seconds(), float64(r.export.MaxRSS)/float64(e.MaxRSS))
		}
		fmt.Fprintf(&b, "| %s | %s | %s (%s - %s) | %s | %s | %s |\n", r.store, r.variant,
			secs(r.export.Median), secs(r.export.Min), secs(r.export.Max), mib(r.export.MaxRSS), ratio, secs(r.build.Median))
	}
	b.WriteString("\nLoad: " + loadavg() + cpuPressure() + "\n")
	return b.String()
}
