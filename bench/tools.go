package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// image is one image of a scenario: a directory tree (what oci2 and the
// backup tools store) and its layers (what a Dockerfile build pushes).
type image struct {
	Name   string
	Dir    string
	Layers []layer
	// Prepare runs before the image is stored (a rebuild touches mtimes).
	Prepare func() error
}

// storer keeps every image of a scenario in one repository.
type storer interface {
	Name() string
	Options() string // pinned options, printed with the results
	Init(ctx context.Context, repo string) error
	Add(ctx context.Context, img image) sample
	// Size reports bytes stored and number of objects (files, blobs).
	Size(ctx context.Context) (bytes, objects int64, err error)
}

// dirSize sums the apparent sizes of regular files under dir and counts
// those whose path matches objects (nil: all).
func dirSize(dir string, object func(path string) bool) (int64, int64, error) {
	var total, n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		if object == nil || object(p) {
			n++
		}
		return nil
	})
	return total, n, err
}

// --- oci2 -------------------------------------------------------------------

type oci2Storer struct {
	r     *runner
	bin   oci2Bin
	store string
}

func (s *oci2Storer) Name() string    { return s.bin.Label }
func (s *oci2Storer) Options() string { return "oci2 create (format v1, zstd level 3 frames)" }

func (s *oci2Storer) Init(ctx context.Context, repo string) error {
	s.store = repo
	return nil
}

func (s *oci2Storer) Add(ctx context.Context, img image) sample {
	return s.r.cmd(ctx, s.bin.Path, "--store", s.store, "create", "--tag", img.Name, img.Dir)
}

// Size is what `oci2 du --json` calls stored_bytes when the command
// exists, else the bytes of the store's blobs; objects are blobs.
func (s *oci2Storer) Size(ctx context.Context) (int64, int64, error) {
	total, n, err := dirSize(filepath.Join(s.store, "blobs"), nil)
	if err != nil {
		return 0, 0, err
	}
	if out, err := s.r.output(ctx, s.bin.Path, "--store", s.store, "du", "--json"); err == nil {
		var du struct {
			StoredBytes int64 `json:"stored_bytes"`
		}
		if json.Unmarshal([]byte(out), &du) == nil && du.StoredBytes > 0 {
			total = du.StoredBytes
		}
	}
	return total, n, nil
}

// --- layered tar ------------------------------------------------------------

// tarStorer models a registry of layered images: each distinct layer
// (by diff ID) is stored once, compressed.
type tarStorer struct {
	r      *runner
	name   string
	filter string // compressor command reading stdin, writing stdout
	dir    string
	layers map[string]int64 // diff ID -> compressed size
	byKey  map[string]string
}

func (s *tarStorer) Name() string    { return s.name }
func (s *tarStorer) Options() string { return "layered PAX tar | " + s.filter + ", base layer shared" }

func (s *tarStorer) Init(ctx context.Context, repo string) error {
	s.dir, s.layers, s.byKey = repo, map[string]int64{}, map[string]string{}
	return os.MkdirAll(repo, 0o755)
}

func (s *tarStorer) Add(ctx context.Context, img image) sample {
	var total sample
	for _, l := range img.Layers {
		if _, ok := s.byKey[l.Key]; ok {
			continue // the same layer pushed again: the registry has it
		}
		smp, id, size := s.build(ctx, l)
		total.Wall += smp.Wall
		total.MaxRSS = max(total.MaxRSS, smp.MaxRSS)
		if smp.Err != nil {
			total.Err = smp.Err
			return total
		}
		s.byKey[l.Key] = id
		s.layers[id] = size
	}
	return total
}

// build writes one layer's tar through the compressor into the repo.
func (s *tarStorer) build(ctx context.Context, l layer) (sample, string, int64) {
	out := filepath.Join(s.dir, fmt.Sprintf("layer-%d", len(s.byKey)))
	c := groupCommand(ctx, "bash", "-c", s.filter+` > "$0"`, out)
	stdin, err := c.StdinPipe()
	if err != nil {
		return sample{Err: err}, "", 0
	}
	t0 := time.Now()
	if err := c.Start(); err != nil {
		return sample{Err: err}, "", 0
	}
	id, _, werr := writeLayerTar(l, stdin)
	stdin.Close()
	err = c.Wait()
	smp := sample{Wall: time.Since(t0)}
	if werr != nil {
		err = werr
	}
	if err != nil {
		smp.Err = fmt.Errorf("%s layer %s: %w", s.name, l.Key, err)
		s.r.failed = append(s.r.failed, smp.Err.Error())
		return smp, "", 0
	}
	smp.MaxRSS = maxRSS(c)
	fi, err := os.Stat(out)
	if err != nil {
		smp.Err = err
		return smp, "", 0
	}
	if _, dup := s.layers[id]; dup {
		os.Remove(out) // same diff ID as a stored layer
	}
	return smp, id, fi.Size()
}

func (s *tarStorer) Size(ctx context.Context) (int64, int64, error) {
	var total int64
	for _, n := range s.layers {
		total += n
	}
	return total, int64(len(s.layers)), nil
}

// --- restic, borg, casync -----------------------------------------------------

type backupStorer struct {
	r       *runner
	name    string
	options string
	repo    string
	env     []string
	init    func(repo string) []string            // argv
	add     func(repo string, img image) []string // argv, run in img.Dir
	object  func(path string) bool
}

func (s *backupStorer) Name() string    { return s.name }
func (s *backupStorer) Options() string { return s.options }

func (s *backupStorer) Init(ctx context.Context, repo string) error {
	s.repo = repo
	if err := os.MkdirAll(filepath.Dir(repo), 0o755); err != nil {
		return err
	}
	argv := s.init(repo)
	if argv == nil {
		return os.MkdirAll(repo, 0o755)
	}
	smp := s.run(ctx, "", argv)
	return smp.Err
}

func (s *backupStorer) Add(ctx context.Context, img image) sample {
	return s.run(ctx, img.Dir, s.add(s.repo, img))
}

func (s *backupStorer) run(ctx context.Context, dir string, argv []string) sample {
	c := groupCommand(ctx, argv[0], argv[1:]...)
	c.Dir = dir
	c.Env = append(append(os.Environ(), s.r.env...), s.env...)
	var out strings.Builder
	c.Stdout, c.Stderr = io.Discard, &out
	t0 := time.Now()
	err := c.Run()
	smp := sample{Wall: time.Since(t0), MaxRSS: maxRSS(c)}
	if err != nil {
		smp.Err = fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, tail(out.String(), 1500))
		s.r.failed = append(s.r.failed, smp.Err.Error())
	}
	return smp
}

func (s *backupStorer) Size(ctx context.Context) (int64, int64, error) {
	return dirSize(s.repo, s.object)
}

// newStorers returns every store tool that is installed (each oci2 binary
// and tar always), plus the names of those skipped.
func newStorers(r *runner, bins []oci2Bin, scratch string, smoke bool) ([]storer, []string) {
	var list []storer
	for _, b := range bins {
		list = append(list, &oci2Storer{r: r, bin: b})
	}
	list = append(list,
		&tarStorer{r: r, name: "tar+gzip", filter: "gzip -6 -n"},
		&tarStorer{r: r, name: "tar+zstd", filter: "zstd -3 -T0 -q -c"},
	)
	if smoke {
		return list, nil
	}
	var skipped []string
	if have("restic") {
		list = append(list, &backupStorer{
			r: r, name: "restic", options: "restic backup --compression auto",
			env: []string{"RESTIC_PASSWORD=oci2-bench", "RESTIC_CACHE_DIR=" + filepath.Join(scratch, "restic-cache")},
			init: func(repo string) []string {
				return []string{"restic", "--repo", repo, "init"}
			},
			add: func(repo string, img image) []string {
				return []string{"restic", "--repo", repo, "backup", "--compression", "auto", "--host", "bench", "--tag", img.Name, "."}
			},
			object: func(p string) bool { return strings.Contains(p, "/data/") },
		})
	} else {
		skipped = append(skipped, "restic")
	}
	if have("borg") {
		list = append(list, &backupStorer{
			r: r, name: "borg", options: "borg create -C zstd,3 (repo init -e none)",
			env: []string{"BORG_BASE_DIR=" + filepath.Join(scratch, "borg-base"),
				"BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes", "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes"},
			init: func(repo string) []string {
				return []string{"borg", "init", "-e", "none", repo}
			},
			add: func(repo string, img image) []string {
				return []string{"borg", "create", "-C", "zstd,3", repo + "::" + sanitize(img.Name), "."}
			},
			object: func(p string) bool { return strings.Contains(p, "/data/") },
		})
	} else {
		skipped = append(skipped, "borg")
	}
	if have("casync") {
		list = append(list, &backupStorer{
			r: r, name: "casync", options: "casync make (defaults)",
			init: func(string) []string { return nil },
			add: func(repo string, img image) []string {
				return []string{"casync", "make", "--store=" + filepath.Join(repo, "default.castr"),
					filepath.Join(repo, sanitize(img.Name)+".caidx"), "."}
			},
			object: func(p string) bool { return strings.HasSuffix(p, ".cacnk") },
		})
	} else {
		skipped = append(skipped, "casync")
	}
	return list, skipped
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ':' {
			return '-'
		}
		return r
	}, s)
}
