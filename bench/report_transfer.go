package main

import (
	"fmt"
	"strings"
	"time"
)

// spread is "median (min - max)" of a timing.
func spread(st stats) string {
	if st.N == 0 {
		return "-"
	}
	if st.N == 1 {
		return secs(st.Median)
	}
	return fmt.Sprintf("%s (%.2f - %.2f)", secs(st.Median), st.Min.Seconds(), st.Max.Seconds())
}

// exportMarkdown renders the exporter scenario: one table per case.
func (rp *report) exportMarkdown(b *strings.Builder) {
	if len(rp.Exports) == 0 {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## BuildKit exporters\n\n")
	w("Each exporter runs on a fresh `buildkitd-oci2` (OCI worker, its own root) per run, so nothing one " +
		"exporter compressed is reused by another; tools interleaved. The build is solved before every " +
		"timed export, so the time is the `exporting to ...` step of `buildctl --progress rawjson`. " +
		"Bytes written: growth of the daemon's oci2 store and content store, plus the tarball " +
		"`type=oci` sends to buildctl. Peak RSS: the daemon's VmHWM during the export (reset before it), " +
		"largest over runs.\n\n")
	for _, res := range rp.Exports {
		w("### %s\n\n%s. Median of %d run(s) (min - max).\n\n", res.Name, res.Desc, res.Runs)
		w("| exporter | %s export | x best other | after one-file change | x best other | change / %s | bytes written (%s / change) | peak daemon RSS | --output |\n",
			strings.Fields(res.FirstLabel)[0], strings.Fields(res.FirstLabel)[0], strings.Fields(res.FirstLabel)[0])
		w("|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for i, row := range res.Rows {
			if row.First.N == 0 {
				w("| %s | failed | | | | | | | `%s` |\n", row.Tool, row.Spec)
				continue
			}
			var of, oc []float64
			for j, o := range res.Rows {
				if j != i && o.First.N > 0 {
					of, oc = append(of, o.First.Median.Seconds()), append(oc, o.Change.Median.Seconds())
				}
			}
			w("| %s | %s | %s | %s | %s | %.0f%% | %s / %s | %s | `%s` |\n", row.Tool,
				spread(row.First), ratio(row.First.Median.Seconds(), of),
				spread(row.Change), ratio(row.Change.Median.Seconds(), oc),
				100*row.Change.Median.Seconds()/max(row.First.Median.Seconds(), 1e-9),
				mb(row.FirstBytes), mb(row.ChangeBytes), mib(max(row.FirstPeak, row.ChangePeak)), row.Spec)
		}
		w("\nWhole `buildctl build` (cached solve + export), median: ")
		var parts []string
		for _, row := range res.Rows {
			if row.First.N > 0 {
				parts = append(parts, fmt.Sprintf("%s %s / %s", row.Tool, secs(row.FirstWall.Median), secs(row.ChangeWall.Median)))
			}
		}
		w("%s.\n\n", strings.Join(parts, "; "))
	}
}

// registryMarkdown renders the registry scenario.
func (rp *report) registryMarkdown(b *strings.Builder) {
	g := rp.Registry
	if g == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Registry: %s -> %s over %s\n\n", g.V1, g.V2, g.Base)
	w("A distribution registry (v3) on loopback. oci2: `oci2 push` / `oci2 pull`. Layered: the same trees as "+
		"tar+gzip images, %s as a shared base layer plus one top layer per version, pushed and pulled with "+
		"go-containerregistry (layers a store already has are not fetched; fetched layers are extracted with "+
		"`tar -xz`). Requests count every HTTP round trip at the client (pings and token requests included); "+
		"bytes are payload bytes. Counts are exact (one run); times are medians of %d interleaved runs.\n\n", g.Base, g.Runs)
	if g.Err != nil {
		w("Failed: `%s`\n\n", cell(strings.SplitN(g.Err.Error(), "\n", 2)[0]))
	}
	w("| | oci2 | layered tar+gzip | oci2 / layered |\n|---|---:|---:|---:|\n")
	row := func(what string, a, l int64, f func(int64) string) {
		r := "-"
		if l > 0 {
			r = fmt.Sprintf("%.2fx", float64(a)/float64(l))
		}
		w("| %s | %s | %s | %s |\n", what, f(a), f(l), r)
	}
	num := func(n int64) string { return fmt.Sprint(n) }
	o, l := g.OCI2, g.Layered
	row("push v1: bytes sent", o.PushV1.BytesSent, l.PushV1.BytesSent, mb)
	row("push v1: requests", o.PushV1.Requests, l.PushV1.Requests, num)
	row("push v2 after v1: bytes sent", o.PushV2.BytesSent, l.PushV2.BytesSent, mb)
	row("push v2 after v1: requests", o.PushV2.Requests, l.PushV2.Requests, num)
	row("pull v2 into a store with v1: bytes received", o.PullV2.BytesReceived, l.PullV2.BytesReceived, mb)
	row("pull v2 into a store with v1: requests", o.PullV2.Requests, l.PullV2.Requests, num)
	row("pull v2 into an empty store: bytes received", o.Whole.BytesReceived, l.Whole.BytesReceived, mb)
	row("pull v2 into an empty store: requests", o.Whole.Requests, l.Whole.Requests, num)
	if g.OCI2Whole.N > 0 && g.LayeredWhole.N > 0 {
		w("| pull + unpack v2 into an empty store | %s | %s | %.2fx |\n", spread(g.OCI2Whole), spread(g.LayeredWhole),
			g.OCI2Whole.Median.Seconds()/g.LayeredWhole.Median.Seconds())
	}
	w("\n")
	if g.OCI2Pull.N > 0 {
		w("oci2 whole pull alone: %s, then unpack %s; largest oci2 process %s. ", spread(g.OCI2Pull),
			secs(g.OCI2Whole.Median-g.OCI2Pull.Median), mib(g.OCI2RSS))
	}
	w("%s\n\n", g.Detail)
}

// transferGoals checks the targets of issues 3 (exporter) and 4 (registry).
func (rp *report) transferGoals() []goal {
	var out []goal
	for _, res := range rp.Exports {
		var o *exportRow
		var stockFirst, stockChange time.Duration
		stock := ""
		for k := range res.Rows {
			row := &res.Rows[k]
			if row.First.N == 0 {
				continue
			}
			if row.Tool == "type=oci2" {
				o = row
			} else if row.StockGzip && (stockFirst == 0 || row.First.Median < stockFirst) {
				stockFirst, stockChange, stock = row.First.Median, row.Change.Median, row.Tool
			}
		}
		if o == nil {
			continue
		}
		if strings.HasPrefix(res.Name, "copy-") {
			if stockFirst > 0 {
				v := stockFirst.Seconds() / o.First.Median.Seconds()
				out = append(out, newGoal("3", res.Name+": cold type=oci2 export >= 3x faster than the stock gzip export ("+stock+")",
					v, v >= 3, "%.2fx faster"))
			}
			v := o.Change.Median.Seconds() / o.First.Median.Seconds()
			out = append(out, newGoal("3", res.Name+": type=oci2 export after a one-file change <= 10% of its cold time",
				100*v, v <= 0.10, "%.0f%%"))
		} else if stockChange > 0 {
			v := o.Change.Median.Seconds() / stockChange.Seconds()
			out = append(out, newGoal("3", res.Name+": type=oci2 export, base already exported, no slower than the stock exporter ("+stock+")",
				v, v <= 1, "%.2fx the time"))
		}
	}
	if g := rp.Registry; g != nil && g.Err == nil {
		o, l := g.OCI2, g.Layered
		if l.PushV2.BytesSent > 0 {
			v := float64(o.PushV2.BytesSent) / float64(l.PushV2.BytesSent)
			out = append(out, newGoal("4", "push v2 after v1: <= 0.75x the bytes of the layered push", v, v <= 0.75, "%.2fx"))
		}
		out = append(out,
			newGoal("4", "push v2 after v1: < 100 requests", float64(o.PushV2.Requests), o.PushV2.Requests < 100, "%.0f"),
			newGoal("4", "pull v2 into a store with v1: < 100 requests", float64(o.PullV2.Requests), o.PullV2.Requests < 100, "%.0f"))
		if g.OCI2Whole.N > 0 && g.LayeredWhole.N > 0 {
			v := g.OCI2Whole.Median.Seconds() / g.LayeredWhole.Median.Seconds()
			out = append(out, newGoal("4", "whole pull + unpack into an empty store no slower than layered pull + extract",
				v, v <= 1, "%.2fx the time"))
		}
	}
	return out
}
