package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// exportTool is one --output of the exporter scenario.
type exportTool struct {
	Name string
	// Spec is the --output value; dest is a file for type=oci, n numbers
	// the image names.
	Spec func(dest string, n int) string
	// StockGzip marks BuildKit's own exporters with its default compression:
	// the ones the targets compare with.
	StockGzip bool
}

// exportTools: type=oci2 and BuildKit's own exporters. Every tool runs on
// a fresh daemon, so nothing compressed by one is reused by another.
func exportTools(smoke bool) []exportTool {
	list := []exportTool{
		{Name: "type=oci2", Spec: func(_ string, n int) string { return fmt.Sprintf("type=oci2,name=bench:%d", n) }},
		{Name: "type=oci gzip", StockGzip: true, Spec: func(d string, _ int) string { return "type=oci,compression=gzip,dest=" + d }},
		{Name: "type=image (gzip, no push)", StockGzip: true, Spec: func(_ string, n int) string { return fmt.Sprintf("type=image,name=bench:%d", n) }},
		{Name: "type=oci zstd", Spec: func(d string, _ int) string { return "type=oci,compression=zstd,dest=" + d }},
		{Name: "type=oci estargz", Spec: func(d string, _ int) string {
			return "type=oci,compression=estargz,oci-mediatypes=true,dest=" + d
		}},
	}
	if smoke {
		return list[:2]
	}
	return list
}

// exportCase is one build exported by every tool: a first export, then an
// export after one file of the context changed.
type exportCase struct {
	Name, Desc  string
	FirstLabel  string // "cold", "first (base not exported yet)"
	Context     string // build context
	Dockerfile  string // directory holding the Dockerfile
	Extra       []string
	ChangedFile string // relative to Context
}

// exportRow is one tool's figures for one case.
type exportRow struct {
	Tool, Spec              string
	First, Change           stats // the "exporting to" step
	FirstWall, ChangeWall   stats // the whole buildctl build (solve cached)
	FirstBytes, ChangeBytes int64 // median: daemon store growth + output file
	FirstOut, ChangeOut     int64 // median: output file (type=oci)
	FirstPeak, ChangePeak   int64 // max over runs: daemon VmHWM during the export
	StockGzip               bool
	Err                     error
}

type exportResult struct {
	Name, Desc, FirstLabel string
	Runs                   int
	Rows                   []exportRow
	Failures               []string // one per failed run
}

// exportSample is one tool's run of one case.
type exportSample struct {
	first, change           build
	firstBytes, changeBytes int64
	firstOut, changeOut     int64
	firstPeak, changePeak   int64
	err                     error
}

// exportBench runs the exporter scenario.
type exportBench struct {
	daemonBin, buildctl, work string
	runs                      int
	tools                     []exportTool
	logf                      func(string, ...any)
}

// runCase runs every tool runs times, interleaved (run i starts at tool i).
func (e *exportBench) runCase(ctx context.Context, c exportCase) exportResult {
	res := exportResult{Name: c.Name, Desc: c.Desc, FirstLabel: c.FirstLabel, Runs: e.runs}
	samples := make([][]exportSample, len(e.tools))
	for i := range e.runs {
		for j := range e.tools {
			k := (i + j) % len(e.tools)
			s := e.once(ctx, c, e.tools[k], k, i)
			if s.err != nil {
				e.logf("export %s %s run %d: FAILED: %v", c.Name, e.tools[k].Name, i+1, s.err)
				res.Failures = append(res.Failures, fmt.Sprintf("exporter %s %s run %d: %v", c.Name, e.tools[k].Name, i+1, s.err))
			} else {
				e.logf("export %s run %d/%d %-28s %s %6.2fs, after change %6.2fs", c.Name, i+1, e.runs,
					e.tools[k].Name, c.FirstLabel, s.first.Export.Seconds(), s.change.Export.Seconds())
			}
			samples[k] = append(samples[k], s)
			if ctx.Err() != nil {
				break
			}
		}
	}
	for k, t := range e.tools {
		res.Rows = append(res.Rows, summarizeExport(t, samples[k]))
	}
	return res
}

func summarizeExport(t exportTool, ss []exportSample) exportRow {
	row := exportRow{Tool: t.Name, Spec: t.Spec("OUT.tar", 1), StockGzip: t.StockGzip}
	var first, change, firstW, changeW []sample
	var fb, cb, fo, co []int64
	for _, s := range ss {
		if s.err != nil {
			row.Err = s.err
			continue
		}
		first = append(first, sample{Wall: s.first.Export})
		change = append(change, sample{Wall: s.change.Export})
		firstW = append(firstW, sample{Wall: s.first.Wall})
		changeW = append(changeW, sample{Wall: s.change.Wall})
		fb, cb = append(fb, s.firstBytes), append(cb, s.changeBytes)
		fo, co = append(fo, s.firstOut), append(co, s.changeOut)
		row.FirstPeak, row.ChangePeak = max(row.FirstPeak, s.firstPeak), max(row.ChangePeak, s.changePeak)
	}
	if len(first) == 0 {
		return row
	}
	row.Err = nil // some runs passed; the failed ones are in Failures
	row.First, row.Change = summarize(first), summarize(change)
	row.FirstWall, row.ChangeWall = summarize(firstW), summarize(changeW)
	row.FirstBytes, row.ChangeBytes = median(fb), median(cb)
	row.FirstOut, row.ChangeOut = median(fo), median(co)
	return row
}

// once runs one tool on one case on a fresh daemon: solve (not measured),
// first export, change one file, solve, export again.
func (e *exportBench) once(ctx context.Context, c exportCase, t exportTool, k, run int) (s exportSample) {
	dir := filepath.Join(e.work, fmt.Sprintf("%s-%d-%d", c.Name, k, run))
	d, err := startDaemon(ctx, e.daemonBin, e.buildctl, dir)
	if err != nil {
		s.err = err
		return s
	}
	defer func() {
		d.stop()
		os.RemoveAll(dir)
	}()
	export := func(n int) (build, int64, int64, int64) {
		if b := d.build(ctx, c.Context, c.Dockerfile, "", c.Extra...); b.Err != nil {
			return b, 0, 0, 0
		}
		dest := filepath.Join(dir, fmt.Sprintf("out-%d.tar", n))
		before := d.exportBytes()
		d.resetPeak()
		b := d.build(ctx, c.Context, c.Dockerfile, t.Spec(dest, n+10*run), c.Extra...)
		peak := d.peak()
		var out int64
		if fi, err := os.Stat(dest); err == nil {
			out = fi.Size()
		}
		return b, d.exportBytes() - before + out, out, peak
	}
	s.first, s.firstBytes, s.firstOut, s.firstPeak = export(1)
	if s.err = s.first.Err; s.err != nil {
		return s
	}
	restore, err := changeFile(filepath.Join(c.Context, c.ChangedFile), run)
	if err != nil {
		s.err = err
		return s
	}
	defer func() {
		if err := restore(); err != nil && s.err == nil {
			s.err = err
		}
	}()
	s.change, s.changeBytes, s.changeOut, s.changePeak = export(2)
	s.err = s.change.Err
	return s
}

// changeFile appends a line to p and returns a func that restores its
// bytes and mtime.
func changeFile(p string, run int) (func() error, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	old, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	line := fmt.Sprintf("\n# changed by the oci2 bench, run %d\n", run+1)
	if err := os.WriteFile(p, append(append([]byte{}, old...), line...), fi.Mode()); err != nil {
		return nil, err
	}
	return func() error {
		if err := os.WriteFile(p, old, fi.Mode()); err != nil {
			return err
		}
		return os.Chtimes(p, fi.ModTime(), fi.ModTime())
	}, nil
}

// pickFile is the first regular file (walk order) of 100 B to 64 KiB
// under dir/sub, else the smallest one: the one-file change.
func pickFile(dir, sub string) (string, error) {
	var found, smallest string
	var least int64 = -1
	err := filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Size() >= 100 && fi.Size() <= 64<<10 {
			found = p
			return fs.SkipAll
		}
		if least < 0 || fi.Size() < least {
			smallest, least = p, fi.Size()
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if found == "" {
		found = smallest
	}
	if found == "" {
		return "", fmt.Errorf("no regular file under %s", filepath.Join(dir, sub))
	}
	return filepath.Rel(dir, found)
}

// copyCase: FROM scratch + COPY of tree, whose bytes all come from the
// Dockerfile (the context is a copy of the tree under work).
func copyCase(ctx context.Context, r *runner, tree, work string) (exportCase, error) {
	c := exportCase{Name: "copy-" + filepath.Base(tree), FirstLabel: "cold",
		Context: filepath.Join(work, "copy-context"), Dockerfile: filepath.Join(work, "copy-dockerfile")}
	if s := r.cmd(ctx, "bash", "-c", `rm -rf "$1" && mkdir -p "$(dirname "$1")" && cp -a "$0" "$1"`, tree, c.Context); s.Err != nil {
		return c, s.Err
	}
	if err := writeDockerfile(c.Dockerfile, "FROM scratch\nCOPY . /\n"); err != nil {
		return c, err
	}
	sub := "etc"
	if _, err := os.Stat(filepath.Join(c.Context, sub)); err != nil {
		sub = "."
	}
	f, err := pickFile(c.Context, sub)
	if err != nil {
		return c, err
	}
	c.ChangedFile = f
	c.Desc = fmt.Sprintf("`FROM scratch` + `COPY . /` of the %s tree; the change appends a line to /%s", filepath.Base(tree), f)
	return c, nil
}

// largeBaseCase: a small COPY on top of tree as a base image (an OCI
// layout with one gzip layer, as a pulled base is), made with oci2 create
// and oci2 export like examples/bases/make-bases.sh.
func largeBaseCase(ctx context.Context, r *runner, oci2, tree, work string) (exportCase, error) {
	name := filepath.Base(tree)
	c := exportCase{Name: "small-change-on-" + name, FirstLabel: "first (base not exported yet)",
		Context: filepath.Join(work, "base-context"), Dockerfile: filepath.Join(work, "base-context"),
		ChangedFile: "app.txt"}
	layout, store := filepath.Join(work, "base-layout"), filepath.Join(work, "base-store")
	digest, err := gzipLayout(ctx, r, oci2, tree, store, "base", layout)
	os.RemoveAll(store)
	if err != nil {
		return c, err
	}
	c.Extra = []string{"--oci-layout", "bigbase=" + layout,
		"--opt", "context:bigbase=oci-layout://bigbase@" + digest}
	if err := writeDockerfile(c.Dockerfile, "FROM bigbase\nCOPY app.txt /opt/app/app.txt\n"); err != nil {
		return c, err
	}
	app := strings.Repeat("application data of the oci2 bench\n", 100)
	if err := os.WriteFile(filepath.Join(c.Context, "app.txt"), []byte(app), 0o644); err != nil {
		return c, err
	}
	c.Desc = fmt.Sprintf("`FROM %s` (an OCI layout, one gzip layer) + `COPY app.txt`; the change appends a line to app.txt", name)
	return c, nil
}

// gzipLayout makes tree an OCIv2 image tagged name in store (oci2 create)
// and exports it to layout as an ordinary image with one gzip layer; it
// returns the layout's manifest digest.
func gzipLayout(ctx context.Context, r *runner, oci2, tree, store, name, layout string) (string, error) {
	for _, s := range []sample{
		r.cmd(ctx, oci2, "--store", store, "create", "--tag", name, tree),
		r.cmd(ctx, oci2, "--store", store, "export", "--compression", "gzip", name, "oci:"+layout+":latest"),
	} {
		if s.Err != nil {
			return "", s.Err
		}
	}
	raw, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		return "", err
	}
	var idx struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil || len(idx.Manifests) == 0 {
		return "", fmt.Errorf("base layout %s: bad index.json: %v", layout, err)
	}
	return idx.Manifests[0].Digest, nil
}

func writeDockerfile(dir, text string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(text), 0o644)
}

// median of n values (0 for none).
func median(v []int64) int64 {
	var ss []sample
	for _, x := range v {
		ss = append(ss, sample{Wall: time.Duration(x)})
	}
	return int64(summarize(ss).Median)
}
