package main

import (
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// tarGz writes dir (or only paths of it, each listed, parents included) as
// a gzip -6 tar to out, with GNU tar, and returns it as a layer.
func tarGz(dir string, paths []string, out string) (v1.Layer, error) {
	args := []string{"-c", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", dir}
	if paths != nil {
		list := out + ".list"
		if err := os.WriteFile(list, []byte(strings.Join(paths, "\x00")+"\x00"), 0o644); err != nil {
			return nil, err
		}
		args = append(args, "--no-recursion", "--null", "-T", list)
	} else {
		args = append(args, ".")
	}
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, 6)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("tar", args...)
	cmd.Stdout = zw
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("tar of %s: %w", dir, err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return tarball.LayerFromFile(out)
}

// diffTree lists the paths of top that are new or changed against base
// (type, mode, owner, size, mtime, link target), with every parent
// directory of such a path, sorted so parents come first.
func diffTree(base, top string) ([]string, error) {
	set := map[string]bool{}
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(top, p)
		if rel == "." {
			return nil
		}
		if changed(filepath.Join(base, rel), p) {
			set["./"+rel] = true
			for dir := filepath.Dir(rel); dir != "."; dir = filepath.Dir(dir) {
				set["./"+dir] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(set))
	for p := range set {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths, nil
}

func changed(a, b string) bool {
	sa, err := os.Lstat(a)
	if err != nil {
		return true
	}
	sb, err := os.Lstat(b)
	if err != nil {
		return true
	}
	if sa.Mode() != sb.Mode() || (!sa.IsDir() && (sa.Size() != sb.Size() || !sa.ModTime().Equal(sb.ModTime()))) {
		return true
	}
	ta, tb := sa.Sys().(*syscall.Stat_t), sb.Sys().(*syscall.Stat_t)
	if ta.Uid != tb.Uid || ta.Gid != tb.Gid {
		return true
	}
	if sa.Mode()&os.ModeSymlink != 0 {
		la, _ := os.Readlink(a)
		lb, _ := os.Readlink(b)
		return la != lb
	}
	return false
}
