package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The index part measures what a big store costs a small command (issue 9
// §3): `oci2 create` of a small tree, then `oci2 export` of the image in a
// fresh process (as after a daemon restart), into an empty store, a store
// of one small image, a synthetic store of millions of chunks and the
// corpus store, each run on a new small tree; indexdaemon.go adds a
// type=oci2 export by a buildkitd-oci2 just started on each store. The
// target is 1.5x the empty store's time and memory.

// indexStore is a store the part measures.
type indexStore struct {
	name, dir string
	fresh     bool // a new empty store for each run
	prepare   func() error
}

// indexRow is one store's figures.
type indexRow struct {
	name           string
	chunks         string
	create, export stats
	rebuild        stats // one create after the index files were deleted
}

// synthEnv makes the bench binary generate a synthetic store and exit: in a
// child, so that the generation's memory does not count in the peak RSS of
// the commands measured after it (Linux keeps a process's peak across exec).
const synthEnv = "OCI2_BENCH_SYNTHETIC"

func synthInChild(ctx context.Context, dir string, chunks int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	c := exec.CommandContext(ctx, self)
	c.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%s", synthEnv, chunks, dir))
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	return c.Run()
}

// synthMain is main in the child of synthInChild.
func synthMain(spec string) {
	n, dir, _ := strings.Cut(spec, ":")
	chunks, err := strconv.Atoi(n)
	if err == nil {
		err = synthStore(context.Background(), dir, chunks, func(f string, a ...any) {
			fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(f, a...))
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: synthetic store:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runIndexBench(ctx context.Context, c config, r *runner, oci2, scratch string, logf func(string, ...any)) (string, error) {
	work := filepath.Join(scratch, "index")
	synth := c.indexStore
	if synth == "" {
		synth = filepath.Join(work, "synthetic")
	}
	chunks := c.indexChunks
	small := filepath.Join(work, "small")
	stores := []indexStore{
		{name: "empty", dir: filepath.Join(work, "empty"), fresh: true},
		// One small image: warm, so new frames go to units as in the big
		// stores (a second compression the empty store does not pay).
		{name: "one-image", dir: small, prepare: func() error { return warmIndex(ctx, r, oci2, small, work) }},
		{name: "synthetic", dir: synth, prepare: func() error { return synthInChild(ctx, synth, chunks) }},
	}
	if trees := presentCorpusTrees(c.corpus); !c.smoke && len(trees) > 0 {
		dir := c.indexCorpusStore
		if dir == "" {
			dir = filepath.Join(work, "corpus")
		}
		stores = append(stores, indexStore{name: "corpus", dir: dir, prepare: func() error {
			return corpusStore(ctx, r, oci2, dir, trees, logf)
		}})
	}
	for _, s := range stores {
		if s.prepare != nil {
			logf("index bench: preparing the %s store", s.name)
			if err := s.prepare(); err != nil {
				return "", fmt.Errorf("index bench: %s store: %w", s.name, err)
			}
		}
		if !s.fresh {
			// Untimed: a store whose index files an older oci2 wrote (or
			// none) is indexed again once.
			if err := warmIndex(ctx, r, oci2, s.dir, work); err != nil {
				return "", err
			}
		}
	}
	var md string
	if c.indexRows["cli"] {
		rows, err := indexCLIRows(ctx, c, r, oci2, stores, work, logf)
		if err != nil {
			return "", err
		}
		md = indexMarkdown(rows, c)
	}
	if c.indexRows["daemon"] {
		rows, err := runDaemonIndex(ctx, c, stores, work, logf)
		if err != nil {
			return "", fmt.Errorf("index bench: %w", err)
		}
		md += daemonIndexMarkdown(rows, c)
	}
	return md, nil
}

// indexCLIRows measures `oci2 create` and `oci2 export` on every store.
func indexCLIRows(ctx context.Context, c config, r *runner, oci2 string, stores []indexStore, work string, logf func(string, ...any)) ([]indexRow, error) {
	var rows []indexRow
	for _, s := range stores {
		row := indexRow{name: s.name}
		var cs, es []sample
		for i := range c.runs {
			dir := s.dir
			if s.fresh {
				dir = filepath.Join(s.dir, fmt.Sprint(i))
			}
			tree := filepath.Join(work, fmt.Sprintf("tree-%s-%d", s.name, i))
			if err := smallTree(tree, uint64(time.Now().UnixNano())); err != nil {
				return nil, err
			}
			ref := fmt.Sprintf("bench.local/small:%s-%d-%d", s.name, i, time.Now().UnixNano())
			cs = append(cs, r.cmd(ctx, oci2, "--store", dir, "create", "-t", ref, tree))
			es = append(es, r.cmd(ctx, oci2, "--store", dir, "export", ref, "oci:"+filepath.Join(work, "export-"+s.name)+":x"))
			os.RemoveAll(tree)
			os.RemoveAll(filepath.Join(work, "export-"+s.name))
			if s.fresh && i == c.runs-1 {
				row.chunks = chunkCount(ctx, r, oci2, dir)
			}
		}
		if !s.fresh {
			row.chunks = chunkCount(ctx, r, oci2, s.dir)
			// The cost the index files save: a create that scans the store
			// and writes them again.
			tree := filepath.Join(work, "tree-rebuild-"+s.name)
			if err := smallTree(tree, uint64(time.Now().UnixNano())); err != nil {
				return nil, err
			}
			os.RemoveAll(filepath.Join(s.dir, "oci2", "index"))
			ref := fmt.Sprintf("bench.local/small:%s-rebuild-%d", s.name, time.Now().UnixNano())
			row.rebuild = summarize([]sample{r.cmd(ctx, oci2, "--store", s.dir, "create", "-t", ref, tree)})
			os.RemoveAll(tree)
		}
		row.create, row.export = summarize(cs), summarize(es)
		logf("index bench: %s store (%s chunks): create %s, export %s", s.name, row.chunks, secs(row.create.Median), secs(row.export.Median))
		rows = append(rows, row)
	}
	return rows, nil
}

// warmIndex runs one untimed create of a tiny tree in the store.
func warmIndex(ctx context.Context, r *runner, oci2, dir, work string) error {
	tree := filepath.Join(work, "tree-warm")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(tree)
	if err := os.WriteFile(filepath.Join(tree, "f"), []byte(time.Now().String()), 0o644); err != nil {
		return err
	}
	return r.cmd(ctx, oci2, "--store", dir, "create", "-t", "bench.local/warm:1", tree).Err
}

// presentCorpusTrees lists the corpus trees present, in build order.
func presentCorpusTrees(corpus string) []string {
	var out []string
	for _, t := range corpusTrees {
		if fi, err := os.Stat(filepath.Join(corpus, t)); err == nil && fi.IsDir() {
			out = append(out, filepath.Join(corpus, t))
		}
	}
	return out
}

// corpusStore stores every corpus tree in dir once (kept across runs when
// -index-corpus-store names it).
func corpusStore(ctx context.Context, r *runner, oci2, dir string, trees []string, logf func(string, ...any)) error {
	for _, t := range trees {
		ref := "bench.local/corpus/" + filepath.Base(t) + ":1"
		if _, err := r.output(ctx, oci2, "--store", dir, "inspect", ref); err == nil {
			continue
		}
		logf("index bench: storing %s", filepath.Base(t))
		if s := r.cmd(ctx, oci2, "--store", dir, "create", "-t", ref, t); s.Err != nil {
			return s.Err
		}
	}
	return nil
}

// chunkCount returns the chunks the store's index holds, as `oci2 du`
// cannot tell: the sizes of its index files give it (44 bytes a chunk
// entry), read from the files' footers.
func chunkCount(ctx context.Context, r *runner, oci2, dir string) string {
	n, err := indexChunks(filepath.Join(dir, "oci2", "index"))
	_ = ctx
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%d", n)
}

// smallTree writes the small tree of one run: 300 files of text and
// binary, 2.4 MB, new bytes each run (seed).
func smallTree(dir string, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 3))
	for i := 0; i < 300; i++ {
		b := make([]byte, 8<<10)
		for j := range b {
			if i%3 == 0 {
				b[j] = byte(rng.Uint32())
			} else {
				b[j] = "abcdefgh ij\n"[rng.IntN(12)]
			}
		}
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i/30), fmt.Sprintf("f%03d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func indexMarkdown(rows []indexRow, c config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# oci2 index bench %s\n\n", time.Now().Format("2006-01-02"))
	fmt.Fprintf(&b, "`oci2 create` of a new small tree (300 files, 2.4 MB), then `oci2 export` of it in a fresh process; "+
		"median of %d runs (min - max), peak RSS; ratio to the empty store's median and peak.\n\n", c.runs)
	b.WriteString("| store | chunk entries indexed | create | create RSS | export | export RSS | create / empty (time, RSS) | export / empty (time, RSS) | create after deleting the index files (RSS) |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var base *indexRow
	for i := range rows {
		row := &rows[i]
		if base == nil {
			base = row
		}
		ratio := func(a, e stats) string {
			if e.Median == 0 || e.MaxRSS == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2fx, %.2fx", a.Median.Seconds()/e.Median.Seconds(), float64(a.MaxRSS)/float64(e.MaxRSS))
		}
		rebuild := "-"
		if row.rebuild.N > 0 {
			rebuild = fmt.Sprintf("%s (%s)", secs(row.rebuild.Median), mib(row.rebuild.MaxRSS))
		}
		fmt.Fprintf(&b, "| %s | %s | %s (%s - %s) | %s | %s (%s - %s) | %s | %s | %s | %s |\n", row.name, row.chunks,
			secs(row.create.Median), secs(row.create.Min), secs(row.create.Max), mib(row.create.MaxRSS),
			secs(row.export.Median), secs(row.export.Min), secs(row.export.Max), mib(row.export.MaxRSS),
			ratio(row.create, base.create), ratio(row.export, base.export), rebuild)
	}
	b.WriteString("\nLoad: " + loadavg() + cpuPressure() + "\n")
	return b.String()
}

// indexChunks sums the chunk entries of the index files in dir (SPEC.md
// §8.2: the first count of each file's 68-byte footer).
func indexChunks(dir string) (int64, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range es {
		if !strings.HasSuffix(e.Name(), ".idx") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return 0, err
		}
		fi, err := f.Stat()
		var foot [8]byte
		if err == nil {
			_, err = f.ReadAt(foot[:], fi.Size()-68)
		}
		f.Close()
		if err != nil {
			return 0, err
		}
		n += int64(binary.LittleEndian.Uint64(foot[:]))
	}
	return n, nil
}

// writeIndexReport writes the part's tables to <out>/<date>-index.md.
func writeIndexReport(out, md string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	fmt.Println(md)
	return os.WriteFile(filepath.Join(out, time.Now().Format("2006-01-02")+"-index.md"), []byte(md), 0o644)
}
