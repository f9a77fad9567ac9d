package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// The startup benchmark: time from nothing local to a container's first
// line of output, for one workload, in four modes, modes interleaved and
// caches dropped before every run.
var startupModes = []struct{ key, desc string }{
	{"A", "oci2 pull + unpack --bundle + runc run"},
	{"B", "oci2 mount --bundle from the local store + runc run"},
	{"C", "oci2 mount --bundle lazily from the registry + runc run"},
	{"D", "C with --prefetch of a profile recorded by an earlier run"},
}

// startupBench holds one startup run's setup.
type startupBench struct {
	r        *runner
	oci2     string
	scratch  string
	srcStore string // holds the image (mode B)
	name     string // its name there
	runs     int
	seq      atomic.Int64
}

// startupSample is one run of one mode.
type startupSample struct {
	First    time.Duration // to the first line of output
	Bytes    int64         // received from the registry for the run
	Requests int64
	Err      error
}

// startupRow is one mode at one network setting.
type startupRow struct {
	RTT      time.Duration
	Mode     string
	Samples  []startupSample
	Stats    stats // of First
	Bytes    int64 // median
	Requests int64
}

func dropCaches() error {
	exec.Command("sync").Run()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200)
}

// runStartup benchmarks the workload of tree (argv run in the image).
func runStartup(ctx context.Context, c config, r *runner, oci2, scratch string, logf func(string, ...any)) (string, error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("startup: needs root (FUSE, overlay, runc)")
	}
	regBin, err := exec.LookPath("registry")
	if err != nil {
		return "", fmt.Errorf("startup: the distribution registry is not on PATH: %w", err)
	}
	loadStart := loadavg() + cpuPressure()
	b := &startupBench{r: r, oci2: oci2, scratch: filepath.Join(scratch, "startup"), name: "startup/app:v1", runs: c.runs}
	b.srcStore = filepath.Join(b.scratch, "src-store")
	host, stop, err := startRegistry(regBin, filepath.Join(b.scratch, "registry"))
	if err != nil {
		return "", err
	}
	defer stop()
	main := workload{tree: c.startupTree, cmd: c.startupCmd, name: b.name}
	if err := b.publish(ctx, c.corpus, host, &main); err != nil {
		return "", err
	}
	var cb *ctrBench
	var ctrErr error
	if c.only["containerd"] {
		loads := []workload{main}
		for _, w := range parseWorkloads(c.startupExtra) {
			w.name = fmt.Sprintf("startup/w%d:v1", len(loads))
			if ctrErr = b.publish(ctx, c.corpus, host, &w); ctrErr != nil {
				break
			}
			loads = append(loads, w)
		}
		if ctrErr == nil {
			cb, ctrErr = newCtrBench(ctx, b, host, loads)
		}
		if ctrErr != nil {
			logf("startup: %v", ctrErr)
		}
	}
	var rows []startupRow
	for _, rtt := range []time.Duration{0, 20 * time.Millisecond} {
		ns, err := startNetsim(host, rtt, 100e6)
		if err != nil {
			return "", err
		}
		logf("startup: %v RTT, 100 MB/s, %d runs per mode", rtt, c.runs)
		if c.only["startup"] {
			rows = append(rows, b.atRTT(ctx, ns.Host+"/"+b.name, rtt, logf)...)
		}
		if cb != nil {
			cb.atRTT(ctx, ns, rtt, logf)
		}
		ns.Close()
	}
	md := startupHeader(c, main.stored)
	if c.only["startup"] {
		md += startupMarkdown(main.stored, rows, b.fullRead(ctx, logf))
	}
	if c.only["containerd"] {
		md += ctrMarkdown(c, cb, ctrErr)
	}
	md += fmt.Sprintf("\nMachine: %s. Load average (1, 5, 15 min) at start: %s; at end: %s.\n",
		strings.Join(machine(c.work), "; "), loadStart, loadavg()+cpuPressure())
	return md, nil
}

// workload is a corpus tree made an image whose command is cmd.
type workload struct {
	tree, cmd, name string
	stored          int64 // bytes oci2 stored
	gzName          string
	gzBytes         int64 // the gzip image's blobs
	rows            []startupRow
}

// parseWorkloads reads TREE=COMMAND;TREE=COMMAND.
func parseWorkloads(s string) []workload {
	var out []workload
	for _, item := range strings.Split(s, ";") {
		if tree, cmd, ok := strings.Cut(strings.TrimSpace(item), "="); ok && tree != "" && cmd != "" {
			out = append(out, workload{tree: tree, cmd: cmd})
		}
	}
	return out
}

// publish creates w's image in the source store and pushes it to host.
func (b *startupBench) publish(ctx context.Context, corpus, host string, w *workload) error {
	args := []string{"--store", b.srcStore, "create", "--json", "--tag", w.name}
	for _, a := range strings.Fields(w.cmd) {
		args = append(args, "--cmd", a)
	}
	out, err := b.r.output(ctx, b.oci2, append(args, filepath.Join(corpus, w.tree))...)
	if err != nil {
		return fmt.Errorf("startup: creating the image of %s: %w", w.tree, err)
	}
	var created struct {
		Stats struct {
			StoredBytes int64 `json:"stored_bytes"`
		} `json:"stats"`
	}
	json.Unmarshal([]byte(out), &created)
	w.stored = created.Stats.StoredBytes
	if s := b.r.cmd(ctx, b.oci2, "--store", b.srcStore, "push", w.name, host+"/"+w.name); s.Err != nil {
		return s.Err
	}
	return nil
}

// atRTT runs every mode b.runs times, interleaved, against ref.
func (b *startupBench) atRTT(ctx context.Context, ref string, rtt time.Duration, logf func(string, ...any)) []startupRow {
	profile := filepath.Join(b.scratch, "profile")
	if s := b.lazy(ctx, ref, "--record", profile); s.Err != nil { // records at unmount
		logf("startup: recording a profile: %v", s.Err)
	}
	rows := make([]startupRow, len(startupModes))
	for i, m := range startupModes {
		rows[i] = startupRow{RTT: rtt, Mode: m.key}
	}
	for run := range b.runs {
		for k := range startupModes {
			i := (k + run) % len(startupModes)
			if err := dropCaches(); err != nil {
				logf("startup: dropping caches: %v", err)
			}
			var s startupSample
			switch startupModes[i].key {
			case "A":
				s = b.pullUnpack(ctx, ref)
			case "B":
				s = b.mounted(ctx, b.srcStore, b.name)
			case "C":
				s = b.lazy(ctx, ref)
			case "D":
				s = b.lazy(ctx, ref, "--prefetch", profile)
			}
			logf("startup: %v RTT mode %s run %d: %v, %d bytes, %d requests %v", rtt, startupModes[i].key, run+1,
				s.First.Round(time.Millisecond), s.Bytes, s.Requests, errString(s.Err))
			rows[i].Samples = append(rows[i].Samples, s)
		}
	}
	for i := range rows {
		rows[i].summarize()
	}
	return rows
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (row *startupRow) summarize() {
	var ss []sample
	var bytes, reqs []int64
	for _, s := range row.Samples {
		ss = append(ss, sample{Wall: s.First, Err: s.Err})
		bytes, reqs = append(bytes, s.Bytes), append(reqs, s.Requests)
	}
	row.Stats = summarize(ss)
	row.Bytes, row.Requests = medianInt(bytes), medianInt(reqs)
}

func medianInt(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]int64(nil), v...)
	for i := range s { // insertion sort: a handful of values
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

// fresh returns a new empty directory for one run.
func (b *startupBench) fresh(what string) string {
	d := filepath.Join(b.scratch, fmt.Sprintf("%s-%d", what, b.seq.Add(1)))
	os.MkdirAll(filepath.Dir(d), 0o755)
	return d
}

// pullUnpack is mode A: pull into an empty store, unpack a bundle, run it.
func (b *startupBench) pullUnpack(ctx context.Context, ref string) startupSample {
	st, bundle := b.fresh("store"), b.fresh("bundle")
	defer os.RemoveAll(st)
	defer os.RemoveAll(bundle)
	t0 := time.Now()
	out, err := b.r.output(ctx, b.oci2, "--store", st, "pull", "--json", ref)
	if err != nil {
		return startupSample{Err: err}
	}
	var pulled struct {
		Received int64 `json:"bytes_received"`
		Requests int64 `json:"requests"`
	}
	json.Unmarshal([]byte(out), &pulled)
	if s := b.r.cmd(ctx, b.oci2, "--store", st, "unpack", "--bundle", ref, bundle); s.Err != nil {
		return startupSample{Err: s.Err}
	}
	first, err := b.runc(ctx, bundle, t0)
	return startupSample{First: first, Bytes: pulled.Received, Requests: pulled.Requests, Err: err}
}

// mounted is mode B: mount a stored image as a bundle and run it.
func (b *startupBench) mounted(ctx context.Context, store, name string) startupSample {
	bundle := b.fresh("bundle")
	defer os.RemoveAll(bundle)
	t0 := time.Now()
	if s := b.r.cmd(ctx, b.oci2, "--store", store, "mount", "--bundle", name, bundle); s.Err != nil {
		return startupSample{Err: s.Err}
	}
	defer b.r.cmd(ctx, b.oci2, "umount", bundle)
	first, err := b.runc(ctx, bundle, t0)
	return startupSample{First: first, Err: err}
}

// lazy is modes C and D: mount from the registry into an empty store.
func (b *startupBench) lazy(ctx context.Context, ref string, extra ...string) startupSample {
	st, bundle := b.fresh("store"), b.fresh("bundle")
	defer os.RemoveAll(st)
	defer os.RemoveAll(bundle)
	t0 := time.Now()
	args := append(append([]string{"--store", st, "mount", "--bundle"}, extra...), ref, bundle)
	if s := b.r.cmd(ctx, b.oci2, args...); s.Err != nil {
		return startupSample{Err: s.Err}
	}
	defer b.r.cmd(ctx, b.oci2, "umount", bundle)
	first, err := b.runc(ctx, bundle, t0)
	time.Sleep(300 * time.Millisecond) // the status file is rewritten every 250 ms
	s := startupSample{First: first, Err: err}
	if out, err := b.r.output(ctx, b.oci2, "mount", "--status", bundle); err == nil {
		var st struct {
			Fetched struct {
				Received int64 `json:"bytes_received"`
				Requests int64 `json:"requests"`
			} `json:"fetched"`
		}
		json.Unmarshal([]byte(out), &st)
		s.Bytes, s.Requests = st.Fetched.Received, st.Fetched.Requests
	}
	return s
}

// runc runs the bundle and returns the time from t0 to its first line.
func (b *startupBench) runc(ctx context.Context, bundle string, t0 time.Time) (time.Duration, error) {
	id := fmt.Sprintf("oci2-bench-%d-%d", os.Getpid(), b.seq.Add(1))
	state := filepath.Join(b.scratch, "runc")
	defer exec.Command("runc", "--root", state, "delete", "--force", id).Run()
	return firstLine(exec.CommandContext(ctx, "runc", "--root", state, "run", "--bundle", bundle, id), t0)
}

// firstLine runs cmd to its end and returns the time from t0 to the first
// line of its output.
func firstLine(cmd *exec.Cmd, t0 time.Time) (time.Duration, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(stdout)
	got := sc.Scan()
	first := time.Since(t0)
	for sc.Scan() {
	}
	if err := cmd.Wait(); err != nil || !got {
		return first, fmt.Errorf("%s: %v (output: %v) %s", strings.Join(cmd.Args[:3], " "), err, got, tail(errb.String(), 500))
	}
	return first, nil
}

// readResult is a full read of the image's tree, mounted and unpacked.
type readResult struct {
	What       string
	Cold, Warm time.Duration
	Err        error
}

// fullRead times `tar -c` of the whole tree through a mount from the local
// store and of an unpacked copy, with a cold and then a warm page cache.
func (b *startupBench) fullRead(ctx context.Context, logf func(string, ...any)) []readResult {
	unpacked, mnt := b.fresh("unpacked"), b.fresh("mnt")
	defer os.RemoveAll(unpacked)
	defer os.RemoveAll(mnt)
	os.MkdirAll(mnt, 0o755)
	if s := b.r.cmd(ctx, b.oci2, "--store", b.srcStore, "unpack", b.name, unpacked); s.Err != nil {
		return []readResult{{What: "unpacked", Err: s.Err}}
	}
	if s := b.r.cmd(ctx, b.oci2, "--store", b.srcStore, "mount", b.name, mnt); s.Err != nil {
		return []readResult{{What: "mounted", Err: s.Err}}
	}
	defer b.r.cmd(ctx, b.oci2, "umount", mnt)
	var out []readResult
	for _, d := range []struct{ what, dir string }{{"unpacked (ext4)", unpacked}, {"mounted (FUSE, local store)", mnt}} {
		res := readResult{What: d.what}
		// through a pipe: GNU tar does not read file data when writing to /dev/null
		script := fmt.Sprintf("tar -C %q -cf - . | cat > /dev/null", d.dir)
		dropCaches()
		cold := b.r.sh(ctx, script)
		warm := b.r.sh(ctx, script)
		res.Cold, res.Warm = cold.Wall, warm.Wall
		if cold.Err != nil {
			res.Err = cold.Err
		} else if warm.Err != nil {
			res.Err = warm.Err
		}
		logf("startup: full read of %s: cold %v, warm %v", d.what, res.Cold.Round(time.Millisecond), res.Warm.Round(time.Millisecond))
		out = append(out, res)
	}
	return out
}
