package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// layer is one image layer the way a Dockerfile produces it: the whole of
// dir (parent == "") or what changed in dir relative to parent (new and
// modified entries, whiteouts for deleted ones, with their parent dirs).
type layer struct {
	Key    string // identifies this layer's content for caching
	Parent string
	Dir    string
}

// entry is one path to put in a layer tar, relative to the layer's dir;
// Whiteout entries are written as empty ".wh.<name>" files.
type entry struct {
	Rel      string
	Whiteout bool
}

// layerEntries lists the paths of a layer in tar order (a directory
// before its contents).
func layerEntries(l layer) ([]entry, error) {
	if l.Parent == "" {
		return diffDir(l.Dir, "", ".", true)
	}
	return diffDir(l.Dir, l.Parent, ".", false)
}

// diffDir returns the entries of child/rel that differ from parent/rel
// (all of them when all is set), rel itself included when it differs or
// holds a difference.
func diffDir(child, parent, rel string, all bool) ([]entry, error) {
	var st, pst unix.Stat_t
	if err := unix.Lstat(filepath.Join(child, rel), &st); err != nil {
		return nil, err
	}
	self := all
	parentHas := false
	if !all {
		if err := unix.Lstat(filepath.Join(parent, rel), &pst); err == nil {
			parentHas = true
			self = !sameMeta(&st, &pst, filepath.Join(child, rel), filepath.Join(parent, rel))
		} else {
			self = true
		}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if self {
			return []entry{{Rel: rel}}, nil
		}
		return nil, nil
	}
	names, err := readNames(filepath.Join(child, rel))
	if err != nil {
		return nil, err
	}
	var sub []entry
	childAll := all || !parentHas || pst.Mode&unix.S_IFMT != unix.S_IFDIR
	for _, n := range names {
		es, err := diffDir(child, parent, filepath.Join(rel, n), childAll)
		if err != nil {
			return nil, err
		}
		sub = append(sub, es...)
	}
	if !childAll {
		pnames, err := readNames(filepath.Join(parent, rel))
		if err != nil {
			return nil, err
		}
		have := map[string]bool{}
		for _, n := range names {
			have[n] = true
		}
		for _, n := range pnames {
			if !have[n] {
				sub = append(sub, entry{Rel: filepath.Join(rel, ".wh."+n), Whiteout: true})
			}
		}
	}
	if self || len(sub) > 0 {
		return append([]entry{{Rel: rel}}, sub...), nil
	}
	return nil, nil
}

// sameMeta is the differ's test (as BuildKit's and containerd's): same
// type, mode, owner, size, mtime, device and link target.
func sameMeta(a, b *unix.Stat_t, ap, bp string) bool {
	if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev ||
		a.Mtim != b.Mtim {
		return false
	}
	switch a.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return true
	case unix.S_IFLNK:
		t1, _ := os.Readlink(ap)
		t2, _ := os.Readlink(bp)
		return t1 == t2
	}
	return a.Size == b.Size
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

// writeLayerTar writes a layer as a PAX tar (xattrs as SCHILY.xattr.*,
// hardlinks within the layer as links) to w and returns its diff ID.
func writeLayerTar(l layer, w io.Writer) (string, int64, error) {
	entries, err := layerEntries(l)
	if err != nil {
		return "", 0, fmt.Errorf("listing layer %s: %w", l.Key, err)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	tw := tar.NewWriter(cw)
	links := map[[2]uint64]string{}
	for _, e := range entries {
		if err := writeEntry(tw, l.Dir, e, links); err != nil {
			return "", 0, fmt.Errorf("layer %s: %s: %w", l.Key, e.Rel, err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeEntry(tw *tar.Writer, root string, e entry, links map[[2]uint64]string) error {
	name := strings.TrimPrefix(filepath.ToSlash(e.Rel), "./")
	if e.Whiteout {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Format: tar.FormatPAX})
	}
	p := filepath.Join(root, e.Rel)
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket != 0 {
		return nil
	}
	target := ""
	if fi.Mode()&os.ModeSymlink != 0 {
		if target, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return err
	}
	hdr.Name, hdr.Format = name, tar.FormatPAX
	if fi.IsDir() && name != "." {
		hdr.Name += "/"
	} else if name == "." {
		hdr.Name = "./"
	}
	hdr.Uname, hdr.Gname = "", ""
	st := fi.Sys().(*syscall.Stat_t)
	hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	if x, err := listXattrs(p); err == nil && len(x) > 0 {
		hdr.PAXRecords = map[string]string{}
		for k, v := range x {
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	if fi.Mode().IsRegular() && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := links[key]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			return tw.WriteHeader(hdr)
		}
		links[key] = name
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

func listXattrs(p string) (map[string]string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	out := map[string]string{}
	for _, k := range strings.Split(string(buf[:n]), "\x00") {
		if k == "" {
			continue
		}
		v := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(p, k, v)
		if err != nil {
			continue
		}
		out[k] = string(v[:vn])
	}
	return out, nil
}
