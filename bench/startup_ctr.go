package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The containerd part of the startup benchmark: time from nothing local
// (a fresh containerd, snapshotter and oci2 store for every run, page
// cache dropped) to the first line of `ctr run`, the ordinary gzip image
// through containerd's overlayfs snapshotter against the OCIv2 image
// through oci2-snapshotter, both from the same registry behind the same
// shaping proxy.
type ctrMode struct{ key, desc string }

var (
	ctrPull   = ctrMode{"E", "ctr image pull of the gzip image + ctr run (overlayfs snapshotter)"}
	ctrLazy   = ctrMode{"F", "oci2 containerd import REF, lazily from the registry + ctr run --snapshotter oci2"}
	ctrPulled = ctrMode{"F", "oci2 pull + oci2 containerd import from the store + ctr run --snapshotter oci2 (no lazy import of a REF yet)"}
	ctrLocal  = ctrMode{"G", "oci2 containerd import NAME of a local store holding the image + ctr run --snapshotter oci2"}
)

// ctrTools are what the containerd part runs, found on $PATH.
var ctrTools = []string{"containerd", "containerd-shim-runc-v2", "ctr", "skopeo", "runc"}

// ctrBench is the containerd part's setup.
type ctrBench struct {
	*startupBench
	snapshotter string // oci2-snapshotter binary
	loads       []*workload
	modes       []ctrMode
}

// newCtrBench pushes each workload's image as an ordinary gzip image to
// host and finds out whether `oci2 containerd import` takes a registry
// reference.
func newCtrBench(ctx context.Context, b *startupBench, host string, loads []workload) (*ctrBench, error) {
	for _, t := range ctrTools {
		if _, err := exec.LookPath(t); err != nil {
			return nil, fmt.Errorf("containerd startup: %s is not on PATH: %w", t, err)
		}
	}
	cb := &ctrBench{startupBench: b}
	var err error
	if cb.snapshotter, err = siblingBinary(ctx, b.oci2, "oci2-snapshotter", b.scratch); err != nil {
		return nil, err
	}
	// `oci2 containerd import` runs `oci2-snapshotter import`: next to oci2
	// or on $PATH, where a snapshotter built here goes first.
	os.Setenv("PATH", filepath.Dir(cb.snapshotter)+string(os.PathListSeparator)+os.Getenv("PATH"))
	for i := range loads {
		w := &loads[i]
		w.gzName = strings.Replace(w.name, ":v1", ":gz", 1)
		layout := filepath.Join(b.scratch, "gz-layout")
		os.RemoveAll(layout)
		if _, err := b.r.output(ctx, b.oci2, "--store", b.srcStore, "export", "--compression", "gzip", w.name, "oci:"+layout+":gz"); err != nil {
			return nil, fmt.Errorf("containerd startup: exporting %s as gzip: %w", w.tree, err)
		}
		w.gzBytes = dirBytes(filepath.Join(layout, "blobs"))
		if s := b.r.cmd(ctx, "skopeo", "copy", "--dest-tls-verify=false", "oci:"+layout+":gz", "docker://"+host+"/"+w.gzName); s.Err != nil {
			return nil, fmt.Errorf("containerd startup: pushing the gzip image of %s: %w", w.tree, s.Err)
		}
		os.RemoveAll(layout)
		cb.loads = append(cb.loads, w)
	}
	cb.modes = []ctrMode{ctrPull, ctrPulled, ctrLocal}
	if cb.probeLazyImport(ctx, host+"/"+b.name) {
		cb.modes[1] = ctrLazy
	}
	return cb, nil
}

// probeLazyImport tries `oci2 containerd import REF` on an empty store.
func (cb *ctrBench) probeLazyImport(ctx context.Context, ref string) bool {
	e, err := cb.startCtr(ctx, "")
	if err != nil {
		return false
	}
	defer e.close(ctx)
	_, err = cb.r.output(ctx, cb.oci2, "--store", e.store, "containerd", "import", "--address", e.sock, ref)
	return err == nil
}

// atRTT runs every mode cb.runs times on every workload, modes
// interleaved, through ns, adding a row per mode to the workload.
func (cb *ctrBench) atRTT(ctx context.Context, ns *netsim, rtt time.Duration, logf func(string, ...any)) {
	for _, w := range cb.loads {
		rows := make([]startupRow, len(cb.modes))
		for i, m := range cb.modes {
			rows[i] = startupRow{RTT: rtt, Mode: m.key}
		}
		for run := range cb.runs {
			for k := range cb.modes {
				i := (k + run) % len(cb.modes)
				s := cb.sample(ctx, ns, cb.modes[i], w)
				logf("startup: containerd, %s, %v RTT mode %s run %d: %v, %d bytes, %d requests %v", w.tree, rtt, cb.modes[i].key,
					run+1, s.First.Round(time.Millisecond), s.Bytes, s.Requests, errString(s.Err))
				rows[i].Samples = append(rows[i].Samples, s)
			}
		}
		for i := range rows {
			rows[i].summarize()
		}
		w.rows = append(w.rows, rows...)
	}
}

// sample is one run of mode m of w on a fresh containerd and snapshotter.
func (cb *ctrBench) sample(ctx context.Context, ns *netsim, m ctrMode, w *workload) startupSample {
	store := ""
	if m == ctrLocal {
		store = cb.srcStore
	}
	e, err := cb.startCtr(ctx, store)
	if err != nil {
		return startupSample{Err: err}
	}
	defer e.close(ctx)
	store = e.store
	ref := ns.Host + "/" + w.name
	if err := dropCaches(); err != nil {
		return startupSample{Err: fmt.Errorf("dropping caches: %w", err)}
	}
	ns.Counts()
	t0 := time.Now()
	var steps [][]string
	snap := "oci2"
	switch m {
	case ctrPull:
		ref, snap = ns.Host+"/"+w.gzName, ""
		steps = [][]string{{"ctr", "--address", e.sock, "images", "pull", "--plain-http", ref}}
	case ctrLazy:
		steps = [][]string{{cb.oci2, "--store", store, "containerd", "import", "--address", e.sock, ref}}
	case ctrPulled:
		steps = [][]string{{cb.oci2, "--store", store, "pull", ref},
			{cb.oci2, "--store", store, "containerd", "import", "--address", e.sock, ref}}
	case ctrLocal:
		ref = w.name
		steps = [][]string{{cb.oci2, "--store", store, "containerd", "import", "--address", e.sock, ref}}
	}
	if cb.r.verbose {
		ns.Trace(func(l string) { fmt.Fprintln(os.Stderr, "  registry:", l) })
		defer ns.Trace(nil)
	}
	for _, st := range steps {
		s := cb.r.cmd(ctx, st[0], st[1:]...)
		if s.Err != nil {
			return startupSample{Err: s.Err}
		}
		if cb.r.verbose {
			fmt.Fprintf(os.Stderr, "  %s %s: %v\n", filepath.Base(st[0]), st[len(st)-1], s.Wall.Round(time.Millisecond))
		}
	}
	args := []string{"--address", e.sock, "run", "--rm"}
	if snap != "" {
		args = append(args, "--snapshotter", snap)
	}
	id := fmt.Sprintf("oci2-bench-%d", cb.seq.Add(1))
	first, err := firstLine(exec.CommandContext(ctx, "ctr", append(args, ref, id)...), t0)
	s := startupSample{First: first, Err: err}
	s.Requests, s.Bytes = ns.Counts()
	if err != nil {
		s.Err = fmt.Errorf("%w\n%s", err, e.logs())
	}
	return s
}

// siblingBinary is name next to the oci2 binary, else built into dir.
func siblingBinary(ctx context.Context, oci2, name, dir string) (string, error) {
	p := filepath.Join(filepath.Dir(oci2), name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	p = filepath.Join(dir, name)
	out, err := exec.CommandContext(ctx, "go", "build", "-o", p, "./cmd/"+name).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/%s: %w\n%s", name, err, out)
	}
	return p, nil
}

// dirBytes sums the sizes of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// ctrTargets says how F compares with E against the targets.
func ctrTargets(rows []startupRow) string {
	med := map[string]time.Duration{}
	for _, r := range rows {
		if r.Stats.N > 0 {
			med[fmt.Sprint(r.RTT, r.Mode)] = r.Stats.Median
		}
	}
	var out []string
	for _, t := range []struct {
		rtt  time.Duration
		max  float64
		what string
	}{{20 * time.Millisecond, 0.5, "at most 0.5x of E at 20 ms"}, {0, 1.2, "never worse than 1.2x of E at 0 ms"}} {
		e, f := med[fmt.Sprint(t.rtt, "E")], med[fmt.Sprint(t.rtt, "F")]
		if e == 0 || f == 0 {
			out = append(out, fmt.Sprintf("F %s: not measured", t.what))
			continue
		}
		x := f.Seconds() / e.Seconds()
		verdict := "met"
		if x > t.max {
			verdict = "missed"
		}
		out = append(out, fmt.Sprintf("F %s: %.2fx, %s", t.what, x, verdict))
	}
	return strings.Join(out, "; ") + "."
}
