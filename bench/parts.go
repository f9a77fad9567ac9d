package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// findTool is binDir/name when it is there, else name on PATH ("" if
// neither).
func findTool(binDir, name string) string {
	if binDir != "" {
		p, err := filepath.Abs(filepath.Join(binDir, name))
		if err == nil {
			if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

// runExporter runs the exporter scenario: cases copy (FROM scratch + COPY
// of each of copyTrees) and, when baseTree is set, a small change on a
// large base.
func runExporter(ctx context.Context, c config, r *runner, oci2 string, copyTrees []string, baseTree, scratch string,
	logf func(string, ...any)) ([]exportResult, string) {
	daemonBin, buildctl := findTool(c.binDir, "buildkitd-oci2"), findTool(c.binDir, "buildctl")
	switch {
	case daemonBin == "":
		return nil, "exporter scenario skipped: no buildkitd-oci2 (make build)"
	case buildctl == "":
		return nil, "exporter scenario skipped: no buildctl (scripts/build-tools.sh)"
	case os.Geteuid() != 0:
		return nil, "exporter scenario skipped: buildkitd-oci2 with the OCI worker needs root"
	}
	work := filepath.Join(scratch, "exporter")
	e := &exportBench{daemonBin: daemonBin, buildctl: buildctl, work: filepath.Join(work, "daemons"),
		runs: c.exportRuns, tools: exportTools(c.smoke), logf: logf}
	var out []exportResult
	for _, tree := range copyTrees {
		if ctx.Err() != nil {
			break
		}
		cc, err := copyCase(ctx, r, tree, work)
		if err != nil {
			r.failed = append(r.failed, "exporter copy case: "+err.Error())
			return out, ""
		}
		logf("exporter: %s, %d tools, %d runs", cc.Name, len(e.tools), e.runs)
		out = append(out, e.runCase(ctx, cc))
		os.RemoveAll(cc.Context)
	}
	if baseTree != "" && ctx.Err() == nil {
		bc, err := largeBaseCase(ctx, r, oci2, baseTree, work)
		if err != nil {
			r.failed = append(r.failed, "exporter large base case: "+err.Error())
			return out, ""
		}
		logf("exporter: %s, %d tools, %d runs", bc.Name, len(e.tools), e.runs)
		out = append(out, e.runCase(ctx, bc))
	}
	for _, res := range out {
		r.failed = append(r.failed, res.Failures...)
	}
	os.RemoveAll(work)
	return out, ""
}

// runRegistry runs the registry scenario on base, v1 and v2 trees.
func runRegistry(ctx context.Context, c config, r *runner, oci2, base, v1, v2, scratch string,
	logf func(string, ...any)) (*registryResult, string) {
	bin := findTool(c.binDir, "registry")
	if bin == "" {
		return nil, "registry scenario skipped: no registry binary (scripts/build-registry.sh)"
	}
	work := filepath.Join(scratch, "registry-bench")
	defer os.RemoveAll(work)
	b := &registryBench{r: r, oci2: oci2, registryBin: bin, work: work, base: base, v1: v1, v2: v2,
		runs: c.registryRuns, logf: logf}
	logf("registry: %s -> %s over %s, %d runs", filepath.Base(v1), filepath.Base(v2), filepath.Base(base), b.runs)
	res := b.run(ctx)
	if res.Err != nil {
		r.failed = append(r.failed, "registry scenario: "+res.Err.Error())
	}
	return &res, ""
}

// smokeApp makes two versions of a small application over tree for the
// smoke registry scenario: v1 adds opt/app, v2 changes a third of its files.
func smokeApp(ctx context.Context, r *runner, tree, work string) (string, string, error) {
	v1, v2 := filepath.Join(work, "app-v1"), filepath.Join(work, "app-v2")
	if s := r.cmd(ctx, "bash", "-c", `rm -rf "$1" && mkdir -p "$(dirname "$1")" && cp -a "$0" "$1"`, tree, v1); s.Err != nil {
		return "", "", s.Err
	}
	rng := rand.New(rand.NewPCG(7, 7))
	text := func(n int) []byte {
		var b strings.Builder
		for b.Len() < n {
			fmt.Fprintf(&b, "line %d of the smoke application %x\n", rng.IntN(1000), rng.Uint64())
		}
		return []byte(b.String()[:n])
	}
	app := filepath.Join(v1, "opt", "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		return "", "", err
	}
	for i := range 120 {
		if err := os.WriteFile(filepath.Join(app, fmt.Sprintf("mod%03d.js", i)), text(2000+rng.IntN(30000)), 0o644); err != nil {
			return "", "", err
		}
	}
	if s := r.cmd(ctx, "bash", "-c", `rm -rf "$1" && mkdir -p "$(dirname "$1")" && cp -a "$0" "$1"`, v1, v2); s.Err != nil {
		return "", "", s.Err
	}
	for i := 0; i < 120; i += 3 {
		if err := os.WriteFile(filepath.Join(v2, "opt", "app", fmt.Sprintf("mod%03d.js", i)), text(2000+rng.IntN(30000)), 0o644); err != nil {
			return "", "", err
		}
	}
	return v1, v2, nil
}
