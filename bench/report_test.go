package main

import (
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExportStep: the duration is the last completed "exporting to" vertex
// of a rawjson stream; other vertexes and lines that are not status
// messages are skipped.
func TestExportStep(t *testing.T) {
	raw := `{"vertexes":[{"digest":"sha256:a","name":"[1/1] COPY . /","started":"2026-11-27T04:23:30.0Z","completed":"2026-11-27T04:23:39.0Z"}]}
{"vertexes":[{"digest":"sha256:b","name":"exporting to oci2 store","started":"2026-11-27T04:23:30.677746088Z"}]}
not json
{"statuses":[{"id":"x","vertex":"sha256:b","name":"data","current":3}]}
{"vertexes":[{"digest":"sha256:b","name":"exporting to oci2 store","started":"2026-11-27T04:23:30.500Z","completed":"2026-11-27T04:23:32.000Z"}]}
1.5
`
	if got, want := exportStep([]byte(raw)), 1500*time.Millisecond; got != want {
		t.Fatalf("exportStep = %v, want %v", got, want)
	}
	if got := exportStep([]byte(`{"vertexes":[{"name":"[internal] load build context"}]}`)); got != 0 {
		t.Fatalf("exportStep without an export = %v, want 0", got)
	}
}

// TestMergeRuns: times become median (min - max), peak RSS the largest,
// bytes those of the first run with the range noted when runs differ, and
// a failed run marks the row failed.
func TestMergeRuns(t *testing.T) {
	run := func(wall time.Duration, rss, bytes int64, err error) scenarioResult {
		return scenarioResult{Rows: []storeRow{{Tool: "oci2", Wall: wall, MaxRSS: rss, Bytes: bytes, Err: err}}}
	}
	got := mergeRuns([]scenarioResult{run(3*time.Second, 10, 100e6, nil), run(time.Second, 30, 100e6, nil), run(2*time.Second, 20, 101e6, nil)})
	row := got.Rows[0]
	if got.Runs != 3 || row.Walls.Median != 2*time.Second || row.Walls.Min != time.Second || row.Walls.Max != 3*time.Second {
		t.Fatalf("runs %d, walls %+v", got.Runs, row.Walls)
	}
	if row.MaxRSS != 30 || row.Bytes != 100e6 || row.BytesVary != "100.0 MB - 101.0 MB" {
		t.Fatalf("rss %d, bytes %d, vary %q", row.MaxRSS, row.Bytes, row.BytesVary)
	}
	failed := mergeRuns([]scenarioResult{run(time.Second, 1, 1, nil), run(0, 0, 0, errors.New("borg: exit 2"))})
	if failed.Rows[0].Err == nil {
		t.Fatal("a failed run did not mark the row failed")
	}
}

// TestReport: the markdown carries every part and the targets of the
// three issues; the chart is a PNG.
func TestReport(t *testing.T) {
	st := statsOf
	rp := &report{When: time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC), Mode: "smoke", Runs: 2,
		Scenarios: []scenarioResult{{scenario: scenario{Name: "smoke", Desc: "one tree"}, Runs: 2, Rows: []storeRow{
			{Tool: "oci2", Bytes: 9e6, FirstBytes: 9e6, Walls: st(time.Second, 2*time.Second)},
			{Tool: "tar+gzip", Bytes: 10e6, FirstBytes: 10e6, Walls: st(3 * time.Second)},
		}}},
		Exports: []exportResult{{Name: "copy-doc", Desc: "COPY", FirstLabel: "cold", Runs: 2, Rows: []exportRow{
			{Tool: "type=oci2", Spec: "type=oci2", First: st(time.Second), Change: st(200 * time.Millisecond)},
			{Tool: "type=oci gzip", Spec: "type=oci", StockGzip: true, First: st(4 * time.Second), Change: st(4 * time.Second)},
		}}},
		Registry: &registryResult{Base: "b", V1: "v1", V2: "v2", Runs: 2,
			OCI2Whole: st(time.Second), LayeredWhole: st(2 * time.Second), OCI2Pull: st(time.Second / 2)},
	}
	rp.Registry.OCI2.PushV2.BytesSent, rp.Registry.Layered.PushV2.BytesSent = 50, 100
	rp.Registry.OCI2.PushV2.Requests, rp.Registry.OCI2.PullV2.Requests = 40, 120
	md := rp.markdown()
	for _, want := range []string{
		"| oci2 | 9.0 MB | 0.90x | 9.0 MB | 0 | 1.50 s (1.00 - 2.00) |",
		"| type=oci2 | 1.00 s | 0.25x | 0.20 s | 0.05x | 20% |",
		"| 3 | copy-doc: cold type=oci2 export >= 3x faster than the stock gzip export (type=oci gzip) | 4.00x faster | yes |",
		"| 3 | copy-doc: type=oci2 export after a one-file change <= 10% of its cold time | 20% | no |",
		"| 4 | push v2 after v1: <= 0.75x the bytes of the layered push | 0.50x | yes |",
		"| 4 | pull v2 into a store with v1: < 100 requests | 120 | no |",
		"| 4 | whole pull + unpack into an empty store no slower than layered pull + extract | 0.50x the time | yes |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	file := filepath.Join(t.TempDir(), "chart.png")
	if err := rp.png(file); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width < 600 {
		t.Fatalf("chart: %v, %dx%d", err, cfg.Width, cfg.Height)
	}
}

// TestBaselineReport: with -oci2-baseline the report compares the two oci2
// binaries row by row, and neither oci2 row's "x best other" counts the
// other oci2 row.
func TestBaselineReport(t *testing.T) {
	st := statsOf
	rp := &report{Runs: 3, Tree: treeInfo{Name: "tree", LogicalBytes: 100e6},
		Scenarios: []scenarioResult{{scenario: scenario{Name: "sc"}, Runs: 3, Rows: []storeRow{
			{Tool: "oci2", Bytes: 9e6, Objects: 10, Walls: st(time.Second), MaxRSS: 100 << 20},
			{Tool: baselineLabel, Bytes: 9e6 - 500, Objects: 11, Walls: st(2 * time.Second), MaxRSS: 200 << 20},
			{Tool: "tar+gzip", Bytes: 10e6, Walls: st(3 * time.Second)},
		}}},
		Timings: []timingResult{
			{Name: "oci2 create (cold store)", Group: "create", stats: st(time.Second, 2*time.Second, 3*time.Second)},
			{Name: baselineLabel + " create (cold store)", Group: "create", stats: st(4 * time.Second)},
			{Name: "tar -c | zstd -3 -T0", Group: "create", stats: st(8 * time.Second)},
		},
	}
	md := rp.markdown()
	for _, want := range []string{
		"| oci2 | 9.0 MB | 0.90x |",
		"| " + baselineLabel + " | 9.0 MB | 0.90x |",
		"| oci2 create (cold store) | 2.00 s | 1.00 - 3.00 | 50 | - | 0.25x |",
		"| " + baselineLabel + " create (cold store) | 4.00 s | 4.00 - 4.00 | 25 | - | 0.50x |",
		"| sc | 9.0 MB | 9.0 MB | +500 B (+0.01%) | 11 / 10 | 2.00 s | 1.00 s | 200 MiB / 100 MiB |",
		"| create (cold store) | 4.00 s | 2.00 s (1.00 - 3.00) | 0.50x | - / - |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains((&report{Scenarios: rp.Scenarios[:0]}).markdown(), "against") {
		t.Error("a report without a baseline has a baseline section")
	}
}

// statsOf summarizes one sample per duration.
func statsOf(d ...time.Duration) stats {
	var ss []sample
	for _, x := range d {
		ss = append(ss, sample{Wall: x})
	}
	return summarize(ss)
}
