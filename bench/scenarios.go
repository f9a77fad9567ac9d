package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// scenario is a set of images stored together in one repository per tool.
type scenario struct {
	Name, Desc string
	Images     []image
}

// corpusTrees are the ../shared/corpus trees, in build order.
var corpusTrees = []string{"debian-minbase", "debian-python", "debian-build",
	"go-app-v1", "go-app-v2", "node-app-v1", "node-app-v2"}

// corpusScenarios builds the full-run scenarios; scratch holds the derived
// trees (rebuilds, the second base).
func corpusScenarios(ctx context.Context, r *runner, corpus, scratch string, rebuilds int) ([]scenario, error) {
	for _, t := range corpusTrees {
		if _, err := os.Stat(filepath.Join(corpus, t)); err != nil {
			return nil, fmt.Errorf("corpus tree %s missing (make corpus): %w", t, err)
		}
	}
	tree := func(n string) string { return filepath.Join(corpus, n) }
	base := layer{Key: "debian-minbase", Dir: tree("debian-minbase")}
	onBase := func(n string) image {
		if n == "debian-minbase" {
			return image{Name: n, Dir: tree(n), Layers: []layer{base}}
		}
		return image{Name: n, Dir: tree(n), Layers: []layer{base, {Key: n, Parent: base.Dir, Dir: tree(n)}}}
	}

	var out []scenario
	out = append(out, scenario{
		Name:   "debian-build",
		Desc:   "one image (debian-build); tar tools store it as one layer",
		Images: []image{{Name: "debian-build", Dir: tree("debian-build"), Layers: []layer{{Key: "debian-build-flat", Dir: tree("debian-build")}}}},
	})
	var all []image
	for _, n := range corpusTrees {
		all = append(all, onBase(n))
	}
	out = append(out, scenario{Name: "corpus-7", Desc: "all seven corpus trees, derived images layered on the shared debian-minbase layer", Images: all})

	// the same image rebuilt from scratch: what the build changes (its layer
	// over the base) gets new mtimes every time, same content
	rb := filepath.Join(scratch, "rebuild", "debian-python")
	if s := r.cmd(ctx, "bash", "-c", `rm -rf "$1" && mkdir -p "$(dirname "$1")" && cp -a "$0" "$1"`, tree("debian-python"), rb); s.Err != nil {
		return nil, s.Err
	}
	changed, err := layerEntries(layer{Parent: base.Dir, Dir: rb})
	if err != nil {
		return nil, err
	}
	var rebuild []image
	for k := range rebuilds {
		when := time.Now().Add(time.Duration(k+1) * time.Hour)
		rebuild = append(rebuild, image{
			Name: fmt.Sprintf("python-rebuild:%d", k+1), Dir: rb,
			Layers:  []layer{base, {Key: fmt.Sprintf("python-rebuild-%d", k+1), Parent: base.Dir, Dir: rb}},
			Prepare: func() error { return touchAll(rb, changed, when) },
		})
	}
	out = append(out, scenario{Name: fmt.Sprintf("rebuild-x%d", rebuilds),
		Desc: fmt.Sprintf("debian-python rebuilt %d times with --no-cache: its layer over debian-minbase gets new mtimes, same content", rebuilds), Images: rebuild})

	// the same application (the Go toolchain of go-app-v1) on two bases
	pyGo := filepath.Join(scratch, "two-bases", "python-go")
	if s := r.cmd(ctx, "bash", "-c", `rm -rf "$2" && mkdir -p "$(dirname "$2")" && cp -a "$0" "$2" && cp -a "$1/usr/local/go" "$2/usr/local/"`,
		tree("debian-python"), tree("go-app-v1"), pyGo); s.Err != nil {
		return nil, s.Err
	}
	py := layer{Key: "debian-python", Parent: base.Dir, Dir: tree("debian-python")}
	out = append(out, scenario{
		Name: "two-bases",
		Desc: "the same application (/usr/local/go of go-app-v1) on debian-minbase and on debian-python",
		Images: []image{
			onBase("go-app-v1"),
			{Name: "python-go", Dir: pyGo, Layers: []layer{base, py, {Key: "python-go-app", Parent: py.Dir, Dir: pyGo}}},
		},
	})
	return out, nil
}

// touchAll sets the mtime of every listed entry under root.
func touchAll(root string, entries []entry, when time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(when.UnixNano()), unix.NsecToTimespec(when.UnixNano())}
	for _, e := range entries {
		if e.Whiteout {
			continue
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, e.Rel), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("touch %s: %w", e.Rel, err)
		}
	}
	return nil
}

// smokeScenarios: one generated tree, and the same tree rebuilt.
func smokeScenarios(tree, rebuildTree string, rebuilds int) ([]scenario, error) {
	all, err := layerEntries(layer{Dir: rebuildTree})
	if err != nil {
		return nil, err
	}
	var rebuild []image
	for k := range rebuilds {
		when := time.Now().Add(time.Duration(k+1) * time.Hour)
		rebuild = append(rebuild, image{
			Name: fmt.Sprintf("smoke-rebuild:%d", k+1), Dir: rebuildTree,
			Layers:  []layer{{Key: fmt.Sprintf("smoke-rebuild-%d", k+1), Dir: rebuildTree}},
			Prepare: func() error { return touchAll(rebuildTree, all, when) },
		})
	}
	return []scenario{
		{Name: "smoke", Desc: "one generated tree (one layer)", Images: []image{{Name: "smoke", Dir: tree, Layers: []layer{{Key: "smoke", Dir: tree}}}}},
		{Name: fmt.Sprintf("smoke-rebuild-x%d", rebuilds), Desc: "the generated tree rebuilt with new mtimes", Images: rebuild},
	}, nil
}

// generateTree writes a small synthetic root filesystem: many small
// text-like files, some binaries, duplicates, symlinks, a hardlink and a
// sparse file; about 30 MB. Deterministic for a seed.
func generateTree(root string, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 42))
	words := strings.Fields("the of and to in is that for it as with was on be by this are or from at " +
		"config value error return func package import string int struct file path data buffer " +
		"server client request response handler context option module version license copyright")
	text := func(n int) []byte {
		var b strings.Builder
		for b.Len() < n {
			b.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(12) == 0 {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		}
		return []byte(b.String()[:n])
	}
	blob := func(n int) []byte {
		buf := make([]byte, n)
		for i := 0; i+8 <= n; i += 8 {
			// half random, half zero padding: ELF-like compressibility
			if (i/4096)%2 == 0 {
				binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
			}
		}
		return buf
	}
	write := func(rel string, data []byte, mode os.FileMode) error {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, mode)
	}
	for i := range 1500 {
		dir := fmt.Sprintf("usr/share/doc/pkg%03d", i%150)
		if err := write(fmt.Sprintf("%s/file%04d.txt", dir, i), text(200+rng.IntN(20000)), 0o644); err != nil {
			return err
		}
	}
	var prev []byte
	for i := range 12 {
		data := blob(64<<10 + rng.IntN(1500<<10))
		if i%6 == 5 {
			data = prev
		}
		prev = data
		if err := write(fmt.Sprintf("usr/lib/lib%02d.so", i), data, 0o755); err != nil {
			return err
		}
	}
	if err := write("usr/bin/tool", blob(3<<20), 0o755); err != nil {
		return err
	}
	if err := os.Link(filepath.Join(root, "usr/bin/tool"), filepath.Join(root, "usr/bin/tool-alias")); err != nil {
		return err
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(root, "usr/lib/sparse.img"))
	if err != nil {
		return err
	}
	f.WriteAt(blob(8192), 0)
	f.Truncate(8 << 20)
	return f.Close()
}
