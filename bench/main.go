package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

type config struct {
	corpus, out, binDir, work, timingTree string
	exportTree, largeBase, registryTrees  string
	startupTree, startupCmd, startupExtra string
	smoke, keep, verbose                  bool
	runs, rebuilds                        int
	exportRuns, registryRuns, storeRuns   int
	only                                  map[string]bool
	indexStore, indexCorpusStore          string
	indexChunks                           int
	indexRows                             map[string]bool
	buildkitdBaseline                     string
	baseline                              string
}

// parts of a run, in order; -only picks some. The smoke run leaves out the
// last two (they need root, runc, FUSE and containerd, and take minutes).
var parts = []string{"store", "timing", "exporter", "registry", "bases", "index", "startup", "containerd"}

func main() {
	if spec := os.Getenv(synthEnv); spec != "" {
		synthMain(spec)
	}
	var c config
	defCorpus := os.Getenv("OCI2_CORPUS")
	if defCorpus == "" {
		defCorpus = "/var/cache/oci2-corpus"
	}
	flag.StringVar(&c.corpus, "corpus", defCorpus, "directory of ../shared/corpus trees (make corpus)")
	flag.BoolVar(&c.smoke, "smoke", false, "one small generated tree, oci2 and tar only (CI)")
	flag.StringVar(&c.out, "out", "bench/results", "directory for <date>.md and <date>.png")
	flag.StringVar(&c.binDir, "bin", "", "directory holding the oci2 binary (default: go build ./cmd/oci2)")
	flag.StringVar(&c.work, "work", "/var/tmp", "scratch space (stores, unpacked trees, copies)")
	flag.StringVar(&c.timingTree, "timing-tree", "debian-build", "corpus tree the timings run on")
	flag.IntVar(&c.runs, "runs", 0, "timed runs per operation (default 3, smoke 2)")
	flag.IntVar(&c.rebuilds, "rebuilds", 0, "images in the rebuild scenario (default 5, smoke 2)")
	flag.StringVar(&c.exportTree, "export-tree", "debian-minbase,debian-build", "corpus trees the exporter scenario COPYs (comma-separated; one case each)")
	flag.StringVar(&c.largeBase, "large-base", "debian-build", "corpus tree used as the large base image (\"\": no such case)")
	flag.StringVar(&c.registryTrees, "registry-trees", "debian-minbase,go-app-v1,go-app-v2", "base,v1,v2 corpus trees of the registry scenario")
	flag.IntVar(&c.storeRuns, "store-runs", 0, "runs of each store scenario (default -runs)")
	flag.IntVar(&c.exportRuns, "export-runs", 0, "runs per exporter (default -runs, smoke 1)")
	flag.IntVar(&c.registryRuns, "registry-runs", 0, "whole-pull runs in the registry scenario (default -runs)")
	flag.StringVar(&c.startupTree, "startup-tree", "debian-python", "corpus tree of the startup benchmark")
	flag.StringVar(&c.startupCmd, "startup-cmd", `python3 -c print("hello")`, "its command (split on spaces)")
	flag.StringVar(&c.startupExtra, "startup-extra", "debian-build=gcc --version", "more workloads of the containerd part: TREE=COMMAND;...")
	only := flag.String("only", "", "parts to run, comma-separated: "+strings.Join(parts, ",")+" (default all; -smoke: all but startup,containerd)")
	flag.IntVar(&c.indexChunks, "index-chunks", 0, "chunks of the index part's synthetic store (default 2000000, smoke 50000)")
	flag.StringVar(&c.indexStore, "index-store", "", "the index part's synthetic store, generated there if short of -index-chunks and kept (default: in the scratch directory)")
	flag.StringVar(&c.indexCorpusStore, "index-corpus-store", "", "the index part's store of every corpus tree, made there if missing and kept (default: in the scratch directory)")
	indexRows := flag.String("index-rows", "", "rows of the index part: cli (oci2 create and export), daemon (an export by buildkitd-oci2 after a restart; root) (default both, smoke cli)")
	flag.StringVar(&c.buildkitdBaseline, "buildkitd-baseline", "", "a second buildkitd-oci2 binary (an older build): the index part's daemon rows add it as \"before\"")
	flag.StringVar(&c.baseline, "oci2-baseline", "", "a second oci2 binary (an older build): the store and timing parts add its rows as \""+baselineLabel+"\" and compare")
	flag.BoolVar(&c.keep, "keep", false, "keep the scratch directory")
	flag.BoolVar(&c.verbose, "v", false, "print every command")
	flag.Parse()
	if c.runs == 0 {
		c.runs = map[bool]int{true: 2, false: 3}[c.smoke]
	}
	if c.rebuilds == 0 {
		c.rebuilds = map[bool]int{true: 2, false: 5}[c.smoke]
	}
	if c.exportRuns == 0 {
		c.exportRuns = map[bool]int{true: 1, false: c.runs}[c.smoke]
	}
	if c.indexChunks == 0 {
		c.indexChunks = map[bool]int{true: 50_000, false: 2_000_000}[c.smoke]
	}
	if c.storeRuns == 0 {
		c.storeRuns = c.runs
	}
	if c.registryRuns == 0 {
		c.registryRuns = c.runs
	}
	if *only == "" {
		*only = strings.Join(parts, ",")
		if c.smoke {
			*only = strings.Join(parts[:len(parts)-2], ",")
		}
	}
	if *indexRows == "" {
		*indexRows = map[bool]string{true: "cli", false: "cli,daemon"}[c.smoke]
	}
	c.indexRows = map[string]bool{}
	for _, p := range strings.Split(*indexRows, ",") {
		c.indexRows[strings.TrimSpace(p)] = true
	}
	c.only = map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if !slices.Contains(parts, p) {
				fmt.Fprintf(os.Stderr, "bench: -only: unknown part %q (valid: %s)\n", p, strings.Join(parts, ","))
				os.Exit(2)
			}
			c.only[p] = true
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(ctx context.Context, c config) (int, error) {
	r := &runner{verbose: c.verbose}
	scratch, err := os.MkdirTemp(c.work, "oci2-bench-")
	if err != nil {
		return 1, err
	}
	if !c.keep {
		defer os.RemoveAll(scratch)
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	oci2, err := findOci2(ctx, c.binDir, scratch)
	if err != nil {
		return 1, err
	}
	bins, err := oci2Bins(oci2, c.baseline)
	if err != nil {
		return 1, err
	}
	rp := &report{When: time.Now(), Runs: c.runs, Machine: machine(c.work), Mode: "full", LoadStart: loadavg() + cpuPressure()}
	part := func(name string) {
		rp.Loads = append(rp.Loads, name+" "+loadavg()+cpuPressure())
	}

	var scenarios []scenario
	var timingTree string
	if c.smoke {
		rp.Mode = "smoke"
		timingTree = filepath.Join(scratch, "smoke-tree")
		rebuildTree := filepath.Join(scratch, "smoke-rebuild")
		for _, d := range []string{timingTree, rebuildTree} {
			if err := generateTree(d, 1); err != nil {
				return 1, fmt.Errorf("generating the smoke tree: %w", err)
			}
		}
		if scenarios, err = smokeScenarios(timingTree, rebuildTree, c.rebuilds); err != nil {
			return 1, err
		}
	} else if c.only["store"] {
		if scenarios, err = corpusScenarios(ctx, r, c.corpus, scratch, c.rebuilds); err != nil {
			return 1, err
		}
	}
	if !c.smoke {
		timingTree = filepath.Join(c.corpus, c.timingTree)
	}

	storers, skipped := newStorers(r, bins, scratch, c.smoke)
	rp.Skipped = skipped
	rp.Versions = append(binVersions(bins), versions(ctx, r, oci2, storers)...)
	if c.only["store"] {
		part("store")
		for _, sc := range scenarios {
			var runs []scenarioResult
			for i := range c.storeRuns {
				logf("scenario %s run %d/%d: %d image(s) with %d tools", sc.Name, i+1, c.storeRuns, len(sc.Images), len(storers))
				res, err := storeScenario(ctx, sc, storers, filepath.Join(scratch, "repos", sc.Name), i)
				if err != nil {
					return 1, err
				}
				runs = append(runs, res)
				if ctx.Err() != nil {
					return 1, ctx.Err()
				}
			}
			rp.Scenarios = append(rp.Scenarios, mergeRuns(runs))
		}
	}

	if c.only["timing"] {
		part("timing")
		info, err := describeTree(filepath.Base(timingTree), timingTree)
		if err != nil {
			return 1, err
		}
		rp.Tree = info
		logf("timings on %s (%s), %d runs", info.Name, mb(info.LogicalBytes), c.runs)
		ops, err := timingOps(ctx, r, bins, timingTree, filepath.Join(scratch, "timing"), !c.smoke)
		if err != nil {
			rp.Failures = append(rp.Failures, err.Error())
		} else {
			rp.Timings = runTimings(ops, c.runs, func(s string) { logf("%s", s) })
		}
		os.RemoveAll(filepath.Join(scratch, "timing"))
	}

	if c.only["exporter"] && ctx.Err() == nil {
		part("exporter")
		// smoke: a small part of the generated tree (the whole run stays < 1 min)
		copyTrees, baseTree := []string{filepath.Join(timingTree, "usr", "lib")}, ""
		if !c.smoke {
			copyTrees = nil
			for _, t := range strings.Split(c.exportTree, ",") {
				copyTrees = append(copyTrees, filepath.Join(c.corpus, t))
			}
			if c.largeBase != "" {
				baseTree = filepath.Join(c.corpus, c.largeBase)
			}
		}
		var note string
		rp.Exports, note = runExporter(ctx, c, r, oci2, copyTrees, baseTree, scratch, logf)
		rp.addNote(note)
	}

	if c.only["registry"] && ctx.Err() == nil {
		part("registry")
		var base, v1, v2 string
		if c.smoke {
			base = filepath.Join(timingTree, "usr", "share", "doc")
			if v1, v2, err = smokeApp(ctx, r, base, filepath.Join(scratch, "smoke-app")); err != nil {
				return 1, err
			}
		} else {
			t := strings.Split(c.registryTrees, ",")
			if len(t) != 3 {
				return 1, fmt.Errorf("-registry-trees: want base,v1,v2, got %q", c.registryTrees)
			}
			base, v1, v2 = filepath.Join(c.corpus, t[0]), filepath.Join(c.corpus, t[1]), filepath.Join(c.corpus, t[2])
		}
		var note string
		rp.Registry, note = runRegistry(ctx, c, r, oci2, base, v1, v2, scratch, logf)
		rp.addNote(note)
	}
	if c.only["bases"] && ctx.Err() == nil {
		part("bases")
		var note string
		rp.Bases, note = runBases(ctx, c, r, oci2, timingTree, scratch, logf)
		rp.addNote(note)
	}
	if c.only["index"] && ctx.Err() == nil {
		part("index")
		md, err := runIndexBench(ctx, c, r, oci2, scratch, logf)
		if err == nil {
			err = writeIndexReport(c.out, md)
		}
		if err != nil {
			rp.Failures = append(rp.Failures, err.Error())
		}
	}
	if (c.only["startup"] || c.only["containerd"]) && os.Geteuid() != 0 {
		rp.Skipped = append(rp.Skipped, "the startup parts (they need root)")
	} else if (c.only["startup"] || c.only["containerd"]) && ctx.Err() == nil {
		part("startup")
		md, err := runStartup(ctx, c, r, oci2, scratch, logf)
		if err == nil {
			err = writeStartup(c.out, md, !c.only["startup"])
		}
		if err != nil {
			rp.Failures = append(rp.Failures, err.Error())
		}
	}
	if ctx.Err() != nil {
		return 1, ctx.Err()
	}
	rp.Failures = append(rp.Failures, r.failed...)
	rp.LoadEnd = loadavg() + cpuPressure()

	md := rp.markdown()
	fmt.Println(md)
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return 1, err
	}
	base := filepath.Join(c.out, rp.When.Format("2006-01-02"))
	if c.smoke {
		base += "-smoke"
	}
	if err := os.WriteFile(base+".md", []byte(md), 0o644); err != nil {
		return 1, err
	}
	if len(rp.Scenarios) > 0 {
		if err := rp.png(base + ".png"); err != nil {
			return 1, fmt.Errorf("chart: %w", err)
		}
		logf("wrote %s.md and %s.png", base, base)
	} else {
		logf("wrote %s.md", base)
	}
	if len(rp.Failures) > 0 {
		logf("%d command(s) failed", len(rp.Failures))
		return 1, nil
	}
	return 0, nil
}

// storeScenario stores every image with every tool, tools interleaved
// image by image (the first tool rotates with the image and the run).
func storeScenario(ctx context.Context, sc scenario, storers []storer, repos string, run int) (scenarioResult, error) {
	res := scenarioResult{scenario: sc, Rows: make([]storeRow, len(storers))}
	for i, s := range storers {
		res.Rows[i] = storeRow{Tool: s.Name(), Options: s.Options()}
		if err := s.Init(ctx, filepath.Join(repos, s.Name())); err != nil {
			res.Rows[i].Err = err
		}
	}
	for k, img := range sc.Images {
		if img.Prepare != nil {
			if err := img.Prepare(); err != nil {
				return res, fmt.Errorf("%s: preparing %s: %w", sc.Name, img.Name, err)
			}
		}
		info, err := describeTree(img.Name, img.Dir)
		if err != nil {
			return res, err
		}
		res.Logical += info.LogicalBytes
		for j := range storers {
			i := (j + k + run) % len(storers)
			row := &res.Rows[i]
			if row.Err != nil {
				continue
			}
			smp := storers[i].Add(ctx, img)
			row.Wall += smp.Wall
			row.MaxRSS = max(row.MaxRSS, smp.MaxRSS)
			if smp.Err != nil {
				row.Err = smp.Err
				continue
			}
			if k == 0 {
				row.FirstBytes, _, row.Err = storers[i].Size(ctx)
			}
		}
	}
	for i, s := range storers {
		if res.Rows[i].Err == nil {
			res.Rows[i].Bytes, res.Rows[i].Objects, res.Rows[i].Err = s.Size(ctx)
		}
	}
	os.RemoveAll(repos)
	return res, nil
}

// describeTree sums the logical bytes and counts the regular files.
func describeTree(name, dir string) (treeInfo, error) {
	info := treeInfo{Name: name}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			info.LogicalBytes += fi.Size()
			info.Files++
		}
		return nil
	})
	return info, err
}

// mergeRuns folds runs of one scenario into one result: bytes and objects
// of the first run (the range is noted if a later run stored a different
// count), times as median (min - max), the largest peak RSS.
func mergeRuns(runs []scenarioResult) scenarioResult {
	res := runs[0]
	res.Runs = len(runs)
	res.Rows = slices.Clone(res.Rows)
	for i := range res.Rows {
		row := &res.Rows[i]
		var walls []sample
		lo, hi := row.Bytes, row.Bytes
		for _, run := range runs {
			o := run.Rows[i]
			if o.Err != nil {
				row.Err = o.Err
				continue
			}
			walls = append(walls, sample{Wall: o.Wall})
			row.MaxRSS = max(row.MaxRSS, o.MaxRSS)
			lo, hi = min(lo, o.Bytes), max(hi, o.Bytes)
		}
		row.Walls = summarize(walls)
		if lo != hi {
			row.BytesVary = fmt.Sprintf("%s - %s", mb(lo), mb(hi))
		}
	}
	return res
}
