package main

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// op is one timed operation; Setup is not timed.
type op struct {
	Name  string
	Group string // ops are compared within a group: "create", "unpack"
	Setup func() error
	Run   func() sample
}

// timingResult is one op's summary.
type timingResult struct {
	Name, Group string
	stats
}

// tarFlags keep what an image layer needs (numeric owners, xattrs).
const tarFlags = `--numeric-owner --xattrs --xattrs-include='*'`

// timingOps builds the interleaved timing ops on tree, after preparing
// their inputs (a warm store per oci2 binary, compressed layers, an OCI
// layout for umoci). bins[0] is the oci2 measured; a second one is the
// baseline (-oci2-baseline), whose ops are named by its label.
func timingOps(ctx context.Context, r *runner, bins []oci2Bin, tree, work string, withUmoci bool) ([]op, error) {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	p := func(n string) string { return filepath.Join(work, n) }
	q := func(s string) string { return "'" + s + "'" }
	clean := func(dirs ...string) func() error {
		return func() error {
			for _, d := range dirs {
				if err := os.RemoveAll(d); err != nil {
					return err
				}
			}
			if s := r.cmd(ctx, "sync"); s.Err != nil {
				return s.Err
			}
			return nil
		}
	}
	mkdest := func(d string) func() error {
		return func() error {
			if err := clean(d)(); err != nil {
				return err
			}
			return os.MkdirAll(d, 0o755)
		}
	}

	// inputs
	for _, s := range []sample{
		r.sh(ctx, fmt.Sprintf("tar %s -C %s -cf - . | gzip -6 -n > %s", tarFlags, q(tree), q(p("layer.tar.gz")))),
		r.sh(ctx, fmt.Sprintf("tar %s -C %s -cf - . | zstd -3 -T0 -q -c > %s", tarFlags, q(tree), q(p("layer.tar.zst")))),
	} {
		if s.Err != nil {
			return nil, s.Err
		}
	}
	var creates, unpacks []op
	for _, b := range bins {
		c, u, err := oci2Ops(ctx, r, b, tree, work, clean)
		if err != nil {
			return nil, err
		}
		creates, unpacks = append(creates, c...), append(unpacks, u...)
	}

	ops := append(creates, []op{
		{Name: "tar -c | gzip -6", Group: "create", Setup: clean(p("out.tar.gz")),
			Run: func() sample {
				return r.sh(ctx, fmt.Sprintf("tar %s -C %s -cf - . | gzip -6 -n > %s", tarFlags, q(tree), q(p("out.tar.gz"))))
			}},
		{Name: "tar -c | zstd -3 -T0", Group: "create", Setup: clean(p("out.tar.zst")),
			Run: func() sample {
				return r.sh(ctx, fmt.Sprintf("tar %s -C %s -cf - . | zstd -3 -T0 -q -c > %s", tarFlags, q(tree), q(p("out.tar.zst"))))
			}},
	}...)
	ops = append(ops, unpacks...)
	ops = append(ops, []op{
		{Name: "tar -xzf (gzip layer)", Group: "unpack", Setup: mkdest(p("dest")),
			Run: func() sample {
				return r.sh(ctx, fmt.Sprintf("tar %s -xzf %s -C %s", tarFlags, q(p("layer.tar.gz")), q(p("dest"))))
			}},
		{Name: "tar -x --zstd (zstd layer)", Group: "unpack", Setup: mkdest(p("dest")),
			Run: func() sample {
				return r.sh(ctx, fmt.Sprintf("tar %s --zstd -xf %s -C %s", tarFlags, q(p("layer.tar.zst")), q(p("dest"))))
			}},
	}...)
	if withUmoci && have("umoci") {
		layout := p("umoci-layout")
		if err := ociLayoutFromLayer(layout, p("layer.tar.gz")); err != nil {
			return nil, fmt.Errorf("making an OCI layout for umoci: %w", err)
		}
		args := []string{"unpack", "--image", layout + ":bench", p("bundle")}
		if os.Geteuid() != 0 {
			args = append([]string{"--rootless"}, args...)
		}
		ops = append(ops, op{Name: "umoci unpack (gzip layer)", Group: "unpack", Setup: clean(p("bundle")),
			Run: func() sample { return r.cmd(ctx, "umoci", args...) }})
	}
	return ops, nil
}

// oci2Ops are the create (cold, warm) and unpack ops of one oci2 binary;
// its warm store is filled here. The measured binary ("oci2") keeps the
// names and paths it always had.
func oci2Ops(ctx context.Context, r *runner, b oci2Bin, tree, work string, clean func(...string) func() error) (creates, unpacks []op, err error) {
	prefix := ""
	if b.Label != "oci2" {
		prefix = "baseline-"
	}
	p := func(n string) string { return filepath.Join(work, prefix+n) }
	warm := p("warm-store")
	if s := r.cmd(ctx, b.Path, "--store", warm, "create", "--tag", "bench", tree); s.Err != nil {
		return nil, nil, s.Err
	}
	creates = []op{
		{Name: b.Label + " create (cold store)", Group: "create", Setup: clean(p("cold-store")),
			Run: func() sample { return r.cmd(ctx, b.Path, "--store", p("cold-store"), "create", "--tag", "bench", tree) }},
		{Name: b.Label + " create (warm store)", Group: "warm", Setup: clean(),
			Run: func() sample { return r.cmd(ctx, b.Path, "--store", warm, "create", "--tag", "bench-again", tree) }},
	}
	dest := filepath.Join(work, "dest")
	unpacks = []op{{Name: b.Label + " unpack", Group: "unpack", Setup: clean(dest),
		Run: func() sample { return r.cmd(ctx, b.Path, "--store", warm, "unpack", "bench", dest) }}}
	return creates, unpacks, nil
}

// runTimings runs every op n times, interleaved (run i starts at op i mod
// len), so that machine noise hits all alike.
func runTimings(ops []op, n int, progress func(string)) []timingResult {
	samples := make([][]sample, len(ops))
	for i := range n {
		for j := range ops {
			k := (i + j) % len(ops)
			o := ops[k]
			if err := o.Setup(); err != nil {
				samples[k] = append(samples[k], sample{Err: fmt.Errorf("setup: %w", err)})
				continue
			}
			s := o.Run()
			progress(fmt.Sprintf("run %d/%d %-28s %8.2fs", i+1, n, o.Name, s.Wall.Seconds()))
			samples[k] = append(samples[k], s)
		}
	}
	out := make([]timingResult, len(ops))
	for k, o := range ops {
		out[k] = timingResult{Name: o.Name, Group: o.Group, stats: summarize(samples[k])}
	}
	return out
}

// ociLayoutFromLayer makes an OCI image layout holding one gzip layer,
// tagged "bench", for umoci.
func ociLayoutFromLayer(dir, layerGz string) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	f, err := os.Open(layerGz)
	if err != nil {
		return err
	}
	defer f.Close()
	lh := sha256.New()
	fi, _ := f.Stat()
	zr, err := gzip.NewReader(io.TeeReader(f, lh))
	if err != nil {
		return err
	}
	dh := sha256.New()
	if _, err := io.Copy(dh, zr); err != nil {
		return err
	}
	io.Copy(lh, f) // trailing bytes after the gzip stream, if any
	layerDigest := hex.EncodeToString(lh.Sum(nil))
	if err := os.Link(layerGz, filepath.Join(blobs, layerDigest)); err != nil {
		return err
	}
	put := func(v any) (map[string]any, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		d := hex.EncodeToString(sum[:])
		return map[string]any{"digest": "sha256:" + d, "size": len(b)},
			os.WriteFile(filepath.Join(blobs, d), b, 0o644)
	}
	cfg, err := put(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux", "created": time.Unix(0, 0).UTC(),
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(dh.Sum(nil))}},
	})
	if err != nil {
		return err
	}
	cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
	man, err := put(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg,
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
			"digest": "sha256:" + layerDigest, "size": fi.Size()}},
	})
	if err != nil {
		return err
	}
	man["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
	man["annotations"] = map[string]string{"org.opencontainers.image.ref.name": "bench"}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{man}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}
