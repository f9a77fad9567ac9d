package unpacktest

import (
	"fmt"
	"maps"
	"slices"
	"sort"
)

// Options relax a comparison.
type Options struct {
	// Blocks compares allocated blocks of regular files (sparseness).
	Blocks bool
	// IgnoreOwners skips uid and gid (an unprivileged unpack).
	IgnoreOwners bool
	// IgnoreRoot skips the root directory's own metadata.
	IgnoreRoot bool
	// IgnoreDirMtime skips directory mtimes.
	IgnoreDirMtime bool
	// IgnoreXattr skips xattrs whose name it matches.
	IgnoreXattr func(name string) bool
}

// Diff returns the differences between want and got, one line each, in path
// order; none means the trees are equal.
func Diff(want, got Snapshot, opts Options) []string {
	var out []string
	paths := slices.Sorted(maps.Keys(want))
	for _, p := range paths {
		w := want[p]
		g, ok := got[p]
		if !ok {
			out = append(out, fmt.Sprintf("%q: missing", "/"+p))
			continue
		}
		if p == "" && opts.IgnoreRoot {
			continue
		}
		out = append(out, diffEntry(w, g, opts)...)
	}
	var extra []string
	for p := range got {
		if _, ok := want[p]; !ok {
			extra = append(extra, fmt.Sprintf("%q: unexpected", "/"+p))
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}

func diffEntry(w, g *Entry, opts Options) []string {
	var out []string
	add := func(what string, wv, gv any) {
		if fmt.Sprint(wv) != fmt.Sprint(gv) {
			out = append(out, fmt.Sprintf("%q: %s: want %v, got %v", "/"+w.Path, what, wv, gv))
		}
	}
	add("type", w.Type, g.Type)
	if w.Type != g.Type {
		return out
	}
	if w.Type != "symlink" { // symlink modes are always 0777 on Linux
		add("mode", fmt.Sprintf("%#o", w.Mode), fmt.Sprintf("%#o", g.Mode))
	}
	if !opts.IgnoreOwners {
		add("owner", fmt.Sprintf("%d:%d", w.UID, w.GID), fmt.Sprintf("%d:%d", g.UID, g.GID))
	}
	if w.Type != "dir" || !opts.IgnoreDirMtime {
		add("mtime", fmt.Sprintf("%d.%09d", w.MtimeSec, w.MtimeNsec), fmt.Sprintf("%d.%09d", g.MtimeSec, g.MtimeNsec))
	}
	add("xattrs", xattrString(w.Xattrs, opts), xattrString(g.Xattrs, opts))
	add("size", w.Size, g.Size)
	add("content", w.Digest, g.Digest)
	add("target", fmt.Sprintf("%q", w.Target), fmt.Sprintf("%q", g.Target))
	add("device", fmt.Sprintf("%d:%d", w.Major, w.Minor), fmt.Sprintf("%d:%d", g.Major, g.Minor))
	add("hardlink group", fmt.Sprintf("%q", w.Link), fmt.Sprintf("%q", g.Link))
	if opts.Blocks {
		add("blocks", w.Blocks, g.Blocks)
	}
	return out
}

func xattrString(xs map[string]string, opts Options) string {
	var keys []string
	for k := range xs {
		if opts.IgnoreXattr == nil || !opts.IgnoreXattr(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	s := "{"
	for i, k := range keys {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%q=%q", k, xs[k])
	}
	return s + "}"
}
