package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// oci2Bin is the binary built from this package by TestMain.
var oci2Bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oci2-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	oci2Bin = filepath.Join(dir, "oci2")
	if out, err := exec.Command("go", "build", "-o", oci2Bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building oci2: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs the binary against one store.
type cli struct {
	t     *testing.T
	store string
}

type result struct {
	stdout, stderr string
	code           int
}

func (c cli) run(args ...string) result {
	c.t.Helper()
	cmd := exec.Command(oci2Bin, append([]string{"--store", c.store}, args...)...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("running oci2: %v", err)
	}
	return result{out.String(), errb.String(), code}
}

// must runs a command that has to succeed and returns its stdout.
func (c cli) must(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("oci2 %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// mustJSON runs a command with --json appended and decodes its output.
func (c cli) mustJSON(v any, args ...string) {
	c.t.Helper()
	out := c.must(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("oci2 %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// entry is what a tree comparison looks at.
type entry struct {
	Mode    fs.FileMode
	UID     uint32
	GID     uint32
	MtimeNs int64 // not for symlinks
	Size    int64
	SHA256  string
	Target  string
	Ino     uint64 // only to group hardlinks
}

// snapshot records every entry under root by relative path; hardlinked
// files are recorded with the first path of their group in Target.
func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	first := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid}
		if fi.Mode()&fs.ModeSymlink == 0 {
			e.MtimeNs = st.Mtim.Nano()
		}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			e.Size, e.SHA256 = fi.Size(), hex.EncodeToString(sum[:])
			if st.Nlink > 1 {
				if f, ok := first[st.Ino]; ok {
					e.Target = "hardlink:" + f
				} else {
					first[st.Ino] = rel
				}
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Target, _ = os.Readlink(p)
		}
		if rel == "." {
			e.MtimeNs = 0 // unpack may touch the destination directory itself
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails t unless the two snapshots are equal.
func sameTree(t *testing.T, want, got map[string]entry) {
	t.Helper()
	n := 0
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: missing", p)
		case g != w:
			t.Errorf("%s: got %+v, want %+v", p, g, w)
		default:
			continue
		}
		if n++; n > 20 {
			t.Fatal("too many differences")
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected", p)
		}
	}
}

// treeWriter writes seeded test trees.
type treeWriter struct {
	t    *testing.T
	root string
	rng  *rand.Rand
}

func newTreeWriter(t *testing.T, root string, seed int64) *treeWriter {
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return &treeWriter{t: t, root: root, rng: rand.New(rand.NewSource(seed))}
}

// random returns n bytes, half random and half repeated text, so they
// compress a little like real files.
func (w *treeWriter) random(n int) []byte {
	b := make([]byte, n)
	w.rng.Read(b[:n/2])
	for i := n / 2; i < n; i++ {
		b[i] = "the quick brown fox jumps over the lazy dog\n"[i%44]
	}
	return b
}

func (w *treeWriter) file(rel string, data []byte, mode fs.FileMode) {
	w.t.Helper()
	p := filepath.Join(w.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		w.t.Fatal(err)
	}
}

func (w *treeWriter) symlink(rel, target string) {
	w.t.Helper()
	if err := os.Symlink(target, filepath.Join(w.root, rel)); err != nil {
		w.t.Fatal(err)
	}
}

func (w *treeWriter) link(rel, existing string) {
	w.t.Helper()
	if err := os.Link(filepath.Join(w.root, existing), filepath.Join(w.root, rel)); err != nil {
		w.t.Fatal(err)
	}
}

// fixTimes sets every mtime under root (symlinks included, deepest first)
// to a fixed time per path, so two trees written at different times with
// the same paths compare equal.
func fixTimes(t *testing.T, root string) {
	t.Helper()
	var paths []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		return nil
	})
	for i := len(paths) - 1; i >= 0; i-- {
		rel, _ := filepath.Rel(root, paths[i])
		ns := int64(1_700_000_000)*1e9 + int64(len(rel))*1_000_001
		ts := []unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}
