package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/oci2/oci2/store/registry"
)

// registryBench pushes v1 then v2 of an application through a real
// registry (distribution, on loopback) as oci2 images and as layered
// tar+gzip images (a shared base layer plus a top layer), and pulls them
// back: into a store that has v1, and whole into an empty one.
type registryBench struct {
	r                       *runner
	oci2, registryBin, work string
	base, v1, v2            string // trees
	runs                    int
	logf                    func(string, ...any)
}

// transfer is what one scheme moved, counted at the HTTP client: every
// round trip (pings and token requests included) and payload bytes.
type transfer struct {
	PushV1, PushV2, PullV1, PullV2, Whole registry.Snapshot
}

type registryResult struct {
	Base, V1, V2  string
	Runs          int
	OCI2, Layered transfer
	OCI2Pull      stats // oci2 pull of v2 into an empty store
	OCI2Whole     stats // the same + oci2 unpack
	LayeredWhole  stats // pull + tar -xz of every layer of v2
	OCI2RSS       int64 // largest oci2 pull or unpack
	Detail        string
	Err           error
}

// transferJSON is the --json output of oci2 push and pull.
type transferJSON struct {
	registry.Snapshot
	BlobsUploaded int `json:"blobs_uploaded"`
	BlobsPresent  int `json:"blobs_present"`
	FramesFetched int `json:"frames_fetched"`
	FramesPresent int `json:"frames_present"`
	FramesRebuilt int `json:"frames_rebuilt"`
	RangeRequests int `json:"range_requests"`
	PackRequests  int `json:"pack_requests"`
}

func (b *registryBench) run(ctx context.Context) registryResult {
	res := registryResult{Base: filepath.Base(b.base), V1: filepath.Base(b.v1), V2: filepath.Base(b.v2), Runs: b.runs}
	host, stop, err := startRegistry(b.registryBin, filepath.Join(b.work, "registry"))
	if err != nil {
		res.Err = err
		return res
	}
	defer stop()
	b.logf("registry on %s", host)
	if res.Err = b.oci2Counts(ctx, host, &res); res.Err != nil {
		return res
	}
	lay, err := newLayered(b.work, b.base, b.v1, b.v2)
	if err != nil {
		res.Err = fmt.Errorf("layered images: %w", err)
		return res
	}
	if res.Layered, res.Err = lay.counts(ctx, host); res.Err != nil {
		return res
	}

	// whole pulls of v2 into empty stores, interleaved
	var pull, whole, layered []sample
	for i := range b.runs {
		for j := range 2 {
			if (i+j)%2 == 0 {
				p, w, rss, snap, err := b.oci2Whole(ctx, host, i)
				pull, whole = append(pull, p), append(whole, w)
				res.OCI2RSS = max(res.OCI2RSS, rss)
				if i == 0 {
					res.OCI2.Whole = snap
				}
				if err != nil {
					res.Err = err
					return res
				}
				b.logf("registry run %d/%d oci2 pull + unpack %6.2fs", i+1, b.runs, w.Wall.Seconds())
			} else {
				t0 := time.Now()
				snap, err := counted(func(rt http.RoundTripper) error {
					return pullLayered(ctx, host+"/layered/app:v2", rt, nil, filepath.Join(b.work, "layered-whole"))
				})
				layered = append(layered, sample{Wall: time.Since(t0)})
				os.RemoveAll(filepath.Join(b.work, "layered-whole"))
				if i == 0 {
					res.Layered.Whole = snap
				}
				if err != nil {
					res.Err = fmt.Errorf("layered whole pull: %w", err)
					return res
				}
				b.logf("registry run %d/%d layered pull + extract %6.2fs", i+1, b.runs, time.Since(t0).Seconds())
			}
		}
	}
	res.OCI2Pull, res.OCI2Whole, res.LayeredWhole = summarize(pull), summarize(whole), summarize(layered)
	return res
}

// oci2Counts creates v1 and v2, pushes both, and pulls both into a second
// store.
func (b *registryBench) oci2Counts(ctx context.Context, host string, res *registryResult) error {
	a, c := filepath.Join(b.work, "oci2-a"), filepath.Join(b.work, "oci2-b")
	defer os.RemoveAll(a)
	defer os.RemoveAll(c)
	for _, v := range []string{b.v1, b.v2} {
		if _, err := b.oci2JSON(ctx, a, nil, "create", "--tag", "app:"+filepath.Base(v), v); err != nil {
			return err
		}
	}
	repo := host + "/oci2/app"
	var p1, p2, q1, q2 transferJSON
	steps := []struct {
		out  *transferJSON
		args []string
		dir  string
	}{
		{&p1, []string{"push", "--json", "app:" + filepath.Base(b.v1), repo + ":v1"}, a},
		{&p2, []string{"push", "--json", "app:" + filepath.Base(b.v2), repo + ":v2"}, a},
		{&q1, []string{"pull", "--json", repo + ":v1"}, c},
		{&q2, []string{"pull", "--json", repo + ":v2"}, c},
	}
	for _, s := range steps {
		if _, err := b.oci2JSON(ctx, s.dir, s.out, s.args...); err != nil {
			return err
		}
	}
	res.OCI2 = transfer{PushV1: p1.Snapshot, PushV2: p2.Snapshot, PullV1: q1.Snapshot, PullV2: q2.Snapshot}
	res.Detail = fmt.Sprintf("oci2 push of v2 uploaded %d of %d blobs; pull of v2 into the store with v1: "+
		"%d frames fetched, %d rebuilt from chunks, %d present, in %d range and %d whole-pack requests.",
		p2.BlobsUploaded, p2.BlobsUploaded+p2.BlobsPresent, q2.FramesFetched, q2.FramesRebuilt, q2.FramesPresent,
		q2.RangeRequests, q2.PackRequests)
	return nil
}

// oci2Whole pulls v2 into an empty store and unpacks it.
func (b *registryBench) oci2Whole(ctx context.Context, host string, run int) (pull, whole sample, rss int64, snap registry.Snapshot, err error) {
	store := filepath.Join(b.work, fmt.Sprintf("oci2-whole-%d", run))
	dest := filepath.Join(b.work, "oci2-unpacked")
	defer os.RemoveAll(store)
	defer os.RemoveAll(dest)
	ref := host + "/oci2/app:v2"
	var q transferJSON
	if pull, err = b.oci2JSON(ctx, store, &q, "pull", "--json", ref); err != nil {
		return
	}
	un, err := b.oci2JSON(ctx, store, nil, "unpack", ref, dest)
	whole = sample{Wall: pull.Wall + un.Wall}
	return pull, whole, max(pull.MaxRSS, un.MaxRSS), q.Snapshot, err
}

// oci2JSON runs oci2 on store, decoding its stdout into out when given.
func (b *registryBench) oci2JSON(ctx context.Context, store string, out any, args ...string) (sample, error) {
	c := exec.CommandContext(ctx, b.oci2, append([]string{"--store", store}, args...)...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := c.Run()
	s := sample{Wall: time.Since(t0), MaxRSS: maxRSS(c)}
	if err != nil {
		err = fmt.Errorf("oci2 %s: %w\n%s", strings.Join(args, " "), err, tail(stderr.String(), 1500))
		b.r.failed = append(b.r.failed, err.Error())
		return s, err
	}
	if out != nil {
		if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
			return s, fmt.Errorf("oci2 %s: decoding --json: %w", strings.Join(args, " "), err)
		}
	}
	return s, nil
}

// startRegistry runs the distribution registry on a free loopback port
// with its storage under dir.
func startRegistry(bin, dir string) (string, func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	host := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"+
		"storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"+
		"http:\n  addr: %s\n  secret: bench\n", filepath.Join(dir, "data"), host)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		return "", nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait(); logFile.Close() }
	for range 100 {
		if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			return host, stop, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	return "", nil, fmt.Errorf("registry did not start on %s\n%s", host, tail(string(log), 1000))
}

// counted runs fn with a counting transport and returns its counts.
func counted(fn func(http.RoundTripper) error) (registry.Snapshot, error) {
	var st registry.Stats
	err := fn(registry.CountingTransport(http.DefaultTransport, &st))
	return st.Snapshot(), err
}
