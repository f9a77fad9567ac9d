package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// startupHeader names the workload and the conditions of both parts.
func startupHeader(c config, stored int64) string {
	return fmt.Sprintf("# oci2 startup benchmark, %s\n\n", time.Now().Format("2006-01-02")) +
		fmt.Sprintf("Workload: %s, `%s`; image %s stored. Time from nothing local (page cache dropped) "+
			"to the container's first line of output; median of %d runs (min - max), modes interleaved. The registry "+
			"(distribution v3, loopback, its own cache warm) sits behind a proxy adding the RTT to every request and "+
			"limiting answers to 100 MB/s.\n", c.startupTree, c.startupCmd, mb(stored), c.runs)
}

// startupMarkdown writes the runc part's tables.
func startupMarkdown(stored int64, rows []startupRow, read []readResult) string {
	var b strings.Builder
	b.WriteString("\n## oci2 mount and runc\n\nA fresh store and bundle for every run. Bytes and requests: received from " +
		"the registry during the run (A: the pull; C, D: metadata and data fetched by the mount until the container exited).\n\n")
	for _, m := range startupModes {
		fmt.Fprintf(&b, "- %s: %s\n", m.key, m.desc)
	}
	b.WriteString(startupTable(rows, "A", stored))
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

// startupTable is rows as a table, times against mode base at each RTT.
func startupTable(rows []startupRow, base string, stored int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n| RTT | mode | first output | vs %s | bytes | %% of stored | requests |\n|---|---|---:|---:|---:|---:|---:|\n", base)
	baseMed := map[time.Duration]time.Duration{}
	for _, r := range rows {
		if r.Mode == base {
			baseMed[r.RTT] = r.Stats.Median
		}
	}
	for _, r := range rows {
		if r.Stats.N == 0 {
			fmt.Fprintf(&b, "| %v | %s | failed: %s | | | | |\n", r.RTT, r.Mode, cell(errString(r.Stats.Err)))
			continue
		}
		vs := ""
		if a := baseMed[r.RTT]; a > 0 {
			vs = fmt.Sprintf("%.2fx", r.Stats.Median.Seconds()/a.Seconds())
		}
		pct := ""
		if stored > 0 && r.Bytes > 0 {
			pct = fmt.Sprintf("%.1f%%", 100*float64(r.Bytes)/float64(stored))
		}
		fmt.Fprintf(&b, "| %v | %s | %s (%s - %s) | %s | %s | %s | %d |\n", r.RTT, r.Mode, secs(r.Stats.Median),
			secs(r.Stats.Min), secs(r.Stats.Max), vs, mb(r.Bytes), pct, r.Requests)
	}
	return b.String()
}

// ctrMarkdown writes the containerd part's tables and its targets.
func ctrMarkdown(c config, cb *ctrBench, setupErr error) string {
	var b strings.Builder
	b.WriteString("\n## containerd: ctr run\n\n")
	if setupErr != nil {
		fmt.Fprintf(&b, "Not measured: %s\n", cell(setupErr.Error()))
		return b.String()
	}
	b.WriteString("containerd v2.4.2 with oci2-snapshotter as proxy plugin; a fresh containerd, snapshotter and " +
		"oci2 store for every run (started before the clock). The gzip image is `oci2 export --compression gzip` " +
		"of the same image (one layer). Bytes and requests: everything the proxy in front of the registry " +
		"answered from the start of the run to the container's exit.\n\n")
	for _, m := range cb.modes {
		fmt.Fprintf(&b, "- %s: %s\n", m.key, m.desc)
	}
	for _, w := range cb.loads {
		fmt.Fprintf(&b, "\n### %s, `%s`\n\nImage %s stored by oci2, %s as gzip; median of %d runs (min - max).\n",
			w.tree, w.cmd, mb(w.stored), mb(w.gzBytes), c.runs)
		b.WriteString(startupTable(w.rows, "E", w.stored))
		fmt.Fprintf(&b, "\nTargets: %s\n", ctrTargets(w.rows))
	}
	return b.String()
}

// writeStartup writes the startup tables to <out>/<date>-startup.md, or
// -containerd.md when only that part ran (the runc part's file stays).
func writeStartup(out, md string, onlyContainerd bool) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	name := map[bool]string{false: "-startup.md", true: "-containerd.md"}[onlyContainerd]
	p := filepath.Join(out, time.Now().Format("2006-01-02")+name)
	fmt.Println(md)
	return os.WriteFile(p, []byte(md), 0o644)
}
