package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// startupMarkdown writes the startup part's tables and its targets.
func startupMarkdown(c config, stored int64, rows []startupRow, read []readResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# oci2 startup benchmark, %s\n\n", time.Now().Format("2006-01-02"))
	fmt.Fprintf(&b, "Workload: %s, `%s`; image %s stored. Time from nothing local (fresh store and bundle, page cache dropped) "+
		"to the container's first line of output; median of %d runs (min - max), modes interleaved. The registry "+
		"(distribution v3, loopback, its own cache warm) sits behind a proxy adding the RTT to every request and "+
		"limiting answers to 100 MB/s. Bytes and requests: received from the registry during the run (A: the pull; "+
		"C, D: metadata and data fetched by the mount until the container exited).\n\n",
		c.startupTree, c.startupCmd, mb(stored), c.runs)
	for _, m := range startupModes {
		fmt.Fprintf(&b, "- %s: %s\n", m.key, m.desc)
	}
	b.WriteString("\n| RTT | mode | first output | vs A | bytes | % of stored | requests |\n|---|---|---:|---:|---:|---:|---:|\n")
	base := map[time.Duration]time.Duration{}
	for _, r := range rows {
		if r.Mode == "A" {
			base[r.RTT] = r.Stats.Median
		}
	}
	for _, r := range rows {
		if r.Stats.N == 0 {
			fmt.Fprintf(&b, "| %v | %s | failed: %s | | | | |\n", r.RTT, r.Mode, cell(errString(r.Stats.Err)))
			continue
		}
		vs := ""
		if a := base[r.RTT]; a > 0 {
			vs = fmt.Sprintf("%.2fx", r.Stats.Median.Seconds()/a.Seconds())
		}
		pct := ""
		if stored > 0 && r.Bytes > 0 {
			pct = fmt.Sprintf("%.1f%%", 100*float64(r.Bytes)/float64(stored))
		}
		fmt.Fprintf(&b, "| %v | %s | %s (%s - %s) | %s | %s | %s | %d |\n", r.RTT, r.Mode, secs(r.Stats.Median),
			secs(r.Stats.Min), secs(r.Stats.Max), vs, mb(r.Bytes), pct, r.Requests)
	}
	b.WriteString("\nFull read of the tree (`tar -cf - . | cat > /dev/null`), cold then warm page cache:\n\n" +
		"| tree | cold | warm |\n|---|---:|---:|\n")
	for _, r := range read {
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | failed: %s | |\n", r.What, cell(r.Err.Error()))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.What, secs(r.Cold), secs(r.Warm))
	}
	return b.String()
}

// writeStartup writes the startup tables to <out>/<date>-startup.md.
func writeStartup(out, md string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	p := filepath.Join(out, time.Now().Format("2006-01-02")+"-startup.md")
	fmt.Println(md)
	return os.WriteFile(p, []byte(md), 0o644)
}
