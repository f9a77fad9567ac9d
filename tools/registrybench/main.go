// Command registrybench measures oci2 push and pull through a real registry
// against the same trees pushed as ordinary layered tar+gzip images (a
// shared base layer plus a top layer), on the corpus trees.
//
//	go run ./tools/registrybench -oci2 bin/oci2 -registry bin/registry -corpus /work/corpus
//
// It prints a markdown report: bytes and requests of pushing v2 after v1 and
// of pulling v2 into a store that holds v1, and the time of a whole pull
// (with unpack or extraction) into an empty store.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/oci2/oci2/chunkstore/registry"
)

type config struct {
	oci2, registryBin, corpus, work string
	base, v1, v2                    string
	keep                            bool
}

func main() {
	var c config
	flag.StringVar(&c.oci2, "oci2", "bin/oci2", "oci2 binary")
	flag.StringVar(&c.registryBin, "registry", "bin/registry", "distribution registry binary (tools/build-registry.sh)")
	flag.StringVar(&c.corpus, "corpus", "/work/corpus", "corpus trees")
	flag.StringVar(&c.work, "work", "", "work directory (default: a new one under /var/tmp)")
	flag.StringVar(&c.base, "base", "debian-minbase", "base tree (the layered images' first layer)")
	flag.StringVar(&c.v1, "v1", "go-app-v1", "first version")
	flag.StringVar(&c.v2, "v2", "go-app-v2", "second version")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory")
	flag.Parse()
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, "registrybench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	if c.work == "" {
		d, err := os.MkdirTemp("/var/tmp", "registrybench-")
		if err != nil {
			return err
		}
		c.work = d
	}
	if !c.keep {
		defer os.RemoveAll(c.work)
	}
	for _, p := range []*string{&c.oci2, &c.registryBin} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	host, stop, err := startRegistry(c)
	if err != nil {
		return err
	}
	defer stop()
	logf("registry on %s, work in %s", host, c.work)
	o, err := benchOCI2(ctx, c, host)
	if err != nil {
		return fmt.Errorf("oci2: %w", err)
	}
	l, err := benchLayered(ctx, c, host)
	if err != nil {
		return fmt.Errorf("layered: %w", err)
	}
	report(c, o, l)
	return nil
}

// numbers of one scheme.
type numbers struct {
	pushV1, pushV2  registry.Snapshot
	pullV1, pullV2  registry.Snapshot // pull v2 into a store holding v1
	wholePull       registry.Snapshot // v2 into an empty store
	wholeTime       time.Duration     // pull + unpack/extract
	pullTime        time.Duration     // oci2: the pull alone
	newBlobs, blobs int
	extra           string
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func startRegistry(c config) (string, func(), error) {
	dir := filepath.Join(c.work, "registry")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	host := "127.0.0.1:5999"
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n  secret: bench\n",
		filepath.Join(dir, "data"), host)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(c.registryBin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	logFile, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return "", nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			return host, stop, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("registry did not start")
}

// oci2 runs the oci2 binary and decodes its --json output when asked.
func oci2(c config, store string, out any, args ...string) error {
	cmd := exec.Command(c.oci2, append([]string{"--store", store}, args...)...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("oci2 %s: %w", strings.Join(args, " "), err)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

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

func benchOCI2(ctx context.Context, c config, host string) (numbers, error) {
	var n numbers
	a := filepath.Join(c.work, "oci2-a")
	for _, v := range []string{c.v1, c.v2} {
		logf("oci2 create %s", v)
		if err := oci2(c, a, nil, "create", "--tag", "app:"+v, filepath.Join(c.corpus, v)); err != nil {
			return n, err
		}
	}
	repo := host + "/oci2/app"
	var p1, p2 transferJSON
	logf("oci2 push v1, v2")
	if err := oci2(c, a, &p1, "push", "--json", "app:"+c.v1, repo+":v1"); err != nil {
		return n, err
	}
	if err := oci2(c, a, &p2, "push", "--json", "app:"+c.v2, repo+":v2"); err != nil {
		return n, err
	}
	n.pushV1, n.pushV2 = p1.Snapshot, p2.Snapshot
	n.newBlobs, n.blobs = p2.BlobsUploaded, p2.BlobsUploaded+p2.BlobsPresent
	b := filepath.Join(c.work, "oci2-b")
	var q1, q2 transferJSON
	logf("oci2 pull v1, v2")
	if err := oci2(c, b, &q1, "pull", "--json", repo+":v1"); err != nil {
		return n, err
	}
	if err := oci2(c, b, &q2, "pull", "--json", repo+":v2"); err != nil {
		return n, err
	}
	n.pullV1, n.pullV2 = q1.Snapshot, q2.Snapshot
	n.extra = fmt.Sprintf("pull v2: %d frames fetched, %d rebuilt, %d present; %d range and %d whole-pack requests",
		q2.FramesFetched, q2.FramesRebuilt, q2.FramesPresent, q2.RangeRequests, q2.PackRequests)
	logf("oci2 whole pull + unpack of v2")
	dropCaches()
	cdir := filepath.Join(c.work, "oci2-c")
	t0 := time.Now()
	var w transferJSON
	if err := oci2(c, cdir, &w, "pull", "--json", repo+":v2"); err != nil {
		return n, err
	}
	n.pullTime = time.Since(t0)
	if err := oci2(c, cdir, nil, "unpack", repo+":v2", filepath.Join(c.work, "oci2-unpacked")); err != nil {
		return n, err
	}
	n.wholeTime = time.Since(t0)
	n.wholePull = w.Snapshot
	return n, nil
}

// dropCaches asks the kernel to drop clean caches (root only; best effort)
// so both whole pulls start alike.
func dropCaches() {
	exec.Command("sync").Run()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0o200)
}

func benchLayered(ctx context.Context, c config, host string) (numbers, error) {
	var n numbers
	dir := filepath.Join(c.work, "layers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return n, err
	}
	logf("layered: tar+gzip of %s", c.base)
	base, err := tarGz(filepath.Join(c.corpus, c.base), nil, filepath.Join(dir, "base.tar.gz"))
	if err != nil {
		return n, err
	}
	var imgs []v1.Image
	for _, v := range []string{c.v1, c.v2} {
		logf("layered: top layer of %s", v)
		paths, err := diffTree(filepath.Join(c.corpus, c.base), filepath.Join(c.corpus, v))
		if err != nil {
			return n, err
		}
		top, err := tarGz(filepath.Join(c.corpus, v), paths, filepath.Join(dir, v+".tar.gz"))
		if err != nil {
			return n, err
		}
		img, err := mutate.AppendLayers(empty.Image, base, top)
		if err != nil {
			return n, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return n, err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", "amd64"
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return n, err
		}
		imgs = append(imgs, img)
	}
	repo := host + "/layered/app"
	for i, tag := range []string{"v1", "v2"} {
		logf("layered: push %s", tag)
		s, err := counted(func(rt http.RoundTripper) error {
			ref, err := name.ParseReference(repo + ":" + tag)
			if err != nil {
				return err
			}
			return remote.Write(ref, imgs[i], remote.WithTransport(rt), remote.WithAuth(authn.Anonymous), remote.WithContext(ctx))
		})
		if err != nil {
			return n, err
		}
		if i == 0 {
			n.pushV1 = s
		} else {
			n.pushV2 = s
		}
	}
	// Pull v1, then v2 into the same "store": layers already there are not
	// fetched (as docker and containerd do); fetched layers are extracted.
	have := map[v1.Hash]bool{}
	for i, tag := range []string{"v1", "v2"} {
		logf("layered: pull %s", tag)
		s, err := counted(func(rt http.RoundTripper) error {
			return pullLayered(ctx, repo+":"+tag, rt, have, filepath.Join(c.work, "layered-"+tag))
		})
		if err != nil {
			return n, err
		}
		if i == 0 {
			n.pullV1 = s
		} else {
			n.pullV2 = s
		}
	}
	logf("layered: whole pull + extract of v2")
	dropCaches()
	t0 := time.Now()
	s, err := counted(func(rt http.RoundTripper) error {
		return pullLayered(ctx, repo+":v2", rt, map[v1.Hash]bool{}, filepath.Join(c.work, "layered-whole"))
	})
	if err != nil {
		return n, err
	}
	n.wholeTime = time.Since(t0)
	n.wholePull = s
	n.blobs, n.newBlobs = 2, 1
	return n, nil
}

// counted runs fn with a counting transport and returns its counts.
func counted(fn func(http.RoundTripper) error) (registry.Snapshot, error) {
	var st registry.Stats
	err := fn(registry.CountingTransport(http.DefaultTransport, &st))
	return st.Snapshot(), err
}

// pullLayered fetches the layers of ref not in have and extracts them in
// order into dest with tar.
func pullLayered(ctx context.Context, ref string, rt http.RoundTripper, have map[v1.Hash]bool, dest string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	img, err := remote.Image(r, remote.WithTransport(rt), remote.WithAuth(authn.Anonymous), remote.WithContext(ctx))
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		if have[d] {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		cmd := exec.Command("tar", "-xz", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", dest)
		cmd.Stdin = rc
		cmd.Stderr = os.Stderr
		err = cmd.Run()
		rc.Close()
		if err != nil {
			return fmt.Errorf("extracting layer %s: %w", d, err)
		}
		have[d] = true
	}
	return nil
}
