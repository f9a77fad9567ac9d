package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// baselineLabel names the rows of -oci2-baseline's binary.
const baselineLabel = "oci2 (before)"

// oci2Bin is one oci2 binary the store and timing parts run: the one
// measured ("oci2") and, with -oci2-baseline, an older build to compare.
type oci2Bin struct {
	Label, Path string
}

// oci2Bins is the measured binary, then the baseline if one is given.
func oci2Bins(oci2, baseline string) ([]oci2Bin, error) {
	bins := []oci2Bin{{Label: "oci2", Path: oci2}}
	if baseline == "" {
		return bins, nil
	}
	p, err := filepath.Abs(baseline)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		return nil, fmt.Errorf("-oci2-baseline %s: not an oci2 binary (%v)", baseline, err)
	}
	return append(bins, oci2Bin{Label: baselineLabel, Path: p}), nil
}

// binVersions names each oci2 binary by its path (name the directory after
// the commit it was built from: the report then says what it compared).
func binVersions(bins []oci2Bin) []string {
	var out []string
	for _, b := range bins {
		out = append(out, b.Label+": "+b.Path)
	}
	return out
}

// family groups the rows that are one tool: a row's "x best other" ratio
// leaves out its own family (oci2 is not compared with its baseline there;
// the baseline section does that).
func family(tool string) string {
	if strings.HasPrefix(tool, "oci2") {
		return "oci2"
	}
	return tool
}

// baselineMarkdown compares oci2 with its baseline, scenario by scenario
// and operation by operation ("" without a baseline).
func (rp *report) baselineMarkdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	rowOf := func(sc scenarioResult, tool string) *storeRow {
		for i := range sc.Rows {
			if sc.Rows[i].Tool == tool && sc.Rows[i].Err == nil {
				return &sc.Rows[i]
			}
		}
		return nil
	}
	for _, sc := range rp.Scenarios {
		o, base := rowOf(sc, "oci2"), rowOf(sc, baselineLabel)
		if o == nil || base == nil {
			continue
		}
		if b.Len() == 0 {
			w("### Bytes stored and store time\n\n")
			w("| scenario | stored before | stored after | change | objects before / after | time before | time after | peak RSS before / after |\n")
			w("|---|---:|---:|---:|---:|---:|---:|---:|\n")
		}
		w("| %s | %s | %s | %s | %d / %d | %s | %s | %s / %s |\n", sc.Name, mb(base.Bytes), mb(o.Bytes),
			bytesChange(base.Bytes, o.Bytes), base.Objects, o.Objects, spread(base.Walls), spread(o.Walls), mib(base.MaxRSS), mib(o.MaxRSS))
	}
	if b.Len() > 0 {
		w("\n")
	}
	timing := map[string]timingResult{}
	for _, t := range rp.Timings {
		timing[t.Name] = t
	}
	header := false
	for _, t := range rp.Timings {
		base, ok := timing[baselineLabel+strings.TrimPrefix(t.Name, "oci2")]
		if !strings.HasPrefix(t.Name, "oci2 ") || !ok || t.N == 0 || base.N == 0 {
			continue
		}
		if !header {
			header = true
			w("### Timings (%s)\n\n| operation | before | after | after / before | peak RSS before / after |\n|---|---:|---:|---:|---:|\n", rp.Tree.Name)
		}
		w("| %s | %s | %s | %.2fx | %s / %s |\n", cell(strings.TrimPrefix(t.Name, "oci2 ")), spread(base.stats), spread(t.stats),
			t.Median.Seconds()/base.Median.Seconds(), mib(base.MaxRSS), mib(t.MaxRSS))
	}
	if b.Len() == 0 {
		return ""
	}
	return "## oci2 against " + baselineLabel + "\n\nThe same scenarios and operations, interleaved with the other tools; " +
		"before = the baseline binary named under Tools.\n\n" + b.String() + "\n"
}

// bytesChange is after - before in bytes and percent ("same" if equal).
func bytesChange(before, after int64) string {
	if before == after {
		return "same"
	}
	pct := "-"
	if before > 0 {
		pct = fmt.Sprintf("%+.2f%%", 100*float64(after-before)/float64(before))
	}
	return fmt.Sprintf("%+d B (%s)", after-before, pct)
}
