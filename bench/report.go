package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// storeRow is one tool's result for one scenario.
type storeRow struct {
	Tool, Options string
	Bytes         int64 // stored after every image
	FirstBytes    int64 // stored after the first image
	Objects       int64
	Wall          time.Duration // all images, one run
	Walls         stats         // Wall over runs
	MaxRSS        int64         // largest process, over runs
	BytesVary     string        // "min - max" when runs stored different byte counts
	Err           error
}

type scenarioResult struct {
	scenario
	Runs    int
	Logical int64 // logical bytes of all images (regular file sizes)
	Rows    []storeRow
}

// treeInfo describes the tree the timings ran on.
type treeInfo struct {
	Name         string
	LogicalBytes int64
	Files        int64
}

// report is everything a run produced.
type report struct {
	When      time.Time
	Mode      string
	Machine   []string
	LoadStart string
	LoadEnd   string
	Loads     []string // at the start of each part
	Versions  []string
	Skipped   []string
	Scenarios []scenarioResult
	Tree      treeInfo
	Runs      int
	Timings   []timingResult
	Exports   []exportResult
	Registry  *registryResult
	Bases     *basesResult
	Notes     []string
	Failures  []string
}

func (rp *report) addNote(n string) {
	if n != "" {
		rp.Notes = append(rp.Notes, n)
	}
}

// cell escapes a markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func mib(n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// ratio formats v / best, where best is the smallest value among others.
func ratio(v float64, others []float64) string {
	best := math.Inf(1)
	for _, o := range others {
		if o > 0 && o < best {
			best = o
		}
	}
	if v <= 0 || math.IsInf(best, 1) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v/best)
}

// markdown renders the report.
func (rp *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# oci2 benchmark, %s (%s)\n\n", rp.When.UTC().Format("2006-01-02 15:04 UTC"), rp.Mode)
	w("Machine: %s\n\n", strings.Join(rp.Machine, "; "))
	w("Load average (1, 5, 15 min) at start: %s; at end: %s (other work on the machine skews timings; CPU pressure: share of the last minute in which some task waited for a CPU).\n\n",
		rp.LoadStart, rp.LoadEnd)
	if len(rp.Loads) > 0 {
		w("Load average at the start of each part: %s.\n\n", strings.Join(rp.Loads, "; "))
	}
	w("Tools: %s\n\n", strings.Join(rp.Versions, "; "))
	if len(rp.Skipped) > 0 {
		w("Not installed (skipped): %s\n\n", strings.Join(rp.Skipped, ", "))
	}
	for _, n := range rp.Notes {
		w("Note: %s.\n\n", n)
	}
	w("Figures are bytes as stored (repository files; for tar, the distinct compressed layers), " +
		"the ratio is to the best *other* tool in the table (below 1.00x: better than every other tool). " +
		"Store time: all images of the scenario, median of the runs (min - max); peak RSS: the largest process over runs.\n\n")

	if len(rp.Scenarios) > 0 {
		w("## Bytes stored\n\n")
	}
	for _, sc := range rp.Scenarios {
		w("### %s\n\n%s. %d image(s), %s logical; %d run(s).\n\n", sc.Name, sc.Desc, len(sc.Images), mb(sc.Logical), sc.Runs)
		w("| tool | stored | x best other | after 1st image | objects | time | peak RSS | options |\n")
		w("|---|---:|---:|---:|---:|---:|---:|---|\n")
		for _, row := range sc.Rows {
			if row.Err != nil {
				w("| %s | failed | | | | | | %s |\n", row.Tool, cell(row.Options))
				continue
			}
			var others []float64
			for _, o := range sc.Rows {
				if family(o.Tool) != family(row.Tool) && o.Err == nil {
					others = append(others, float64(o.Bytes))
				}
			}
			stored := mb(row.Bytes)
			if row.BytesVary != "" {
				stored += " (runs: " + row.BytesVary + ")"
			}
			w("| %s | %s | %s | %s | %d | %s | %s | %s |\n", row.Tool, stored, ratio(float64(row.Bytes), others),
				mb(row.FirstBytes), row.Objects, spread(row.Walls), mib(row.MaxRSS), cell(row.Options))
		}
		w("\n")
	}

	if len(rp.Timings) > 0 {
		w("## Timings: %s (%s logical, %d files), median of %d interleaved runs\n\n",
			rp.Tree.Name, mb(rp.Tree.LogicalBytes), rp.Tree.Files, rp.Runs)
		w("The page cache is warm for every tool alike (no cache drop); `sync` runs before each timed command.\n\n")
		w("| operation | median | min - max | MB/s | peak RSS | x best other |\n")
		w("|---|---:|---:|---:|---:|---:|\n")
		for _, t := range rp.Timings {
			if t.N == 0 {
				w("| %s | failed | | | | |\n", cell(t.Name))
				continue
			}
			var others []float64
			for _, o := range rp.Timings {
				if family(o.Name) != family(t.Name) && o.N > 0 && (o.Group == t.Group || (t.Group == "warm" && o.Group == "create")) {
					others = append(others, o.Median.Seconds())
				}
			}
			w("| %s | %s | %.2f - %.2f | %.0f | %s | %s |\n", cell(t.Name), secs(t.Median), t.Min.Seconds(), t.Max.Seconds(),
				float64(rp.Tree.LogicalBytes)/1e6/t.Median.Seconds(), mib(t.MaxRSS), ratio(t.Median.Seconds(), others))
		}
		w("\n")
	}

	b.WriteString(rp.baselineMarkdown())
	rp.exportMarkdown(&b)
	rp.registryMarkdown(&b)
	rp.basesMarkdown(&b)
	if goals := append(append(rp.goals(), rp.transferGoals()...), rp.basesGoals()...); len(goals) > 0 {
		w("## Targets\n\nFrom the issues (2: store and CLI, 3: exporter, 4: registry, 10: OCIv2 bases); reported, never enforced.\n\n")
		w("| issue | target | measured | met |\n|---|---|---|---|\n")
		for _, g := range goals {
			w("| %s | %s | %s | %s |\n", g.Issue, cell(g.Target), g.Measured, g.Met)
		}
		w("\n")
	}
	if len(rp.Failures) > 0 {
		w("## Failures\n\n")
		for _, f := range rp.Failures {
			w("```\n%s\n```\n", strings.TrimSpace(f))
		}
	}
	return b.String()
}

// goal is one target of an issue and what this run measured.
type goal struct{ Issue, Target, Measured, Met string }

func newGoal(issue, target string, v float64, ok bool, format string) goal {
	met := "no"
	if ok {
		met = "yes"
	}
	return goal{issue, target, fmt.Sprintf(format, v), met}
}

// goals checks the figures issue 2 asks for (reported, never enforced).
func (rp *report) goals() []goal {
	var out []goal
	add := func(target string, v float64, ok bool, format string) {
		out = append(out, newGoal("2", target, v, ok, format))
	}
	row := func(sc scenarioResult, tool string) *storeRow {
		for i := range sc.Rows {
			if sc.Rows[i].Tool == tool && sc.Rows[i].Err == nil && sc.Rows[i].Bytes > 0 {
				return &sc.Rows[i]
			}
		}
		return nil
	}
	for _, sc := range rp.Scenarios {
		o, gz := row(sc, "oci2"), row(sc, "tar+gzip")
		if o == nil || gz == nil {
			continue
		}
		switch {
		case sc.Name == "debian-build" || sc.Name == "smoke":
			v := float64(o.Bytes) / float64(gz.Bytes)
			add(sc.Name+": oci2 <= one tar+gzip layer", v, v <= 1, "%.3fx")
			if zs := row(sc, "tar+zstd"); zs != nil {
				v := float64(o.Bytes) / float64(zs.Bytes)
				add(sc.Name+": oci2 <= one tar+zstd layer (aim)", v, v <= 1, "%.3fx")
			}
		case sc.Name == "corpus-7":
			v := float64(o.Bytes) / float64(gz.Bytes)
			add("corpus-7: oci2 <= 0.85x layered tar+gzip", v, v <= 0.85, "%.3fx")
		case strings.Contains(sc.Name, "rebuild"):
			v := float64(o.Bytes) / float64(o.FirstBytes)
			add(sc.Name+": oci2 <= 1.05x of one build", v, v <= 1.05, "%.3fx")
		}
	}
	tm := map[string]float64{}
	for _, t := range rp.Timings {
		if t.N > 0 {
			tm[t.Name] = t.Median.Seconds()
		}
	}
	cold, gz, zs := tm["oci2 create (cold store)"], tm["tar -c | gzip -6"], tm["tar -c | zstd -3 -T0"]
	if cold > 0 && gz > 0 {
		add("create (cold) >= 8x faster than tar|gzip -6", gz/cold, gz/cold >= 8, "%.1fx faster")
	}
	if cold > 0 && zs > 0 {
		add("create (cold) <= 2x the time of tar|zstd -3 -T0", cold/zs, cold/zs <= 2, "%.2fx the time")
	}
	if warm := tm["oci2 create (warm store)"]; cold > 0 && warm > 0 {
		add("create (warm) >= 5x faster than cold", cold/warm, cold/warm >= 5, "%.1fx faster")
	}
	if un, x := tm["oci2 unpack"], tm["tar -xzf (gzip layer)"]; un > 0 && x > 0 {
		add("unpack no slower than tar -xzf", un/x, un <= x, "%.2fx the time")
	}
	return out
}
