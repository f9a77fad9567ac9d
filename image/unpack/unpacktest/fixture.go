package unpacktest

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"

	"github.com/oci2/oci2/format"
	rt "github.com/oci2/oci2/image/reader/readertest"
)

// FromNode is the snapshot an unpack of the fixture root should give
// (Blocks unknown).
func FromNode(root *rt.Node) Snapshot {
	s := Snapshot{}
	var add func(p string, n *rt.Node)
	add = func(p string, n *rt.Node) {
		e := &Entry{Path: p, Mode: n.Mode, UID: n.UID, GID: n.GID,
			MtimeSec: n.MtimeSec, MtimeNsec: int64(n.MtimeNsec)}
		for _, x := range n.Xattrs {
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[x.Name] = string(x.Value)
		}
		switch n.Type {
		case format.TypeDir:
			e.Type = "dir"
			for _, c := range n.Children {
				cp := c.Name
				if p != "" {
					cp = p + "/" + c.Name
				}
				add(cp, c)
			}
		case format.TypeReg:
			sum := sha256.Sum256(n.Content)
			e.Type, e.Size, e.Digest = "reg", int64(len(n.Content)), hex.EncodeToString(sum[:])
		case format.TypeSymlink:
			e.Type, e.Target = "symlink", n.Target
		case format.TypeChar, format.TypeBlock:
			e.Type, e.Major, e.Minor = "char", n.DevMajor, n.DevMinor
			if n.Type == format.TypeBlock {
				e.Type = "block"
			}
		case format.TypeFifo:
			e.Type = "fifo"
		case format.TypeHardlink:
			e.Type, e.Link = "hardlink", n.Target
		}
		s[p] = e
	}
	add("", root)
	// Hardlinks become copies of their target's entry, grouped.
	groups := map[string][]string{}
	for p, e := range s {
		if e.Type == "hardlink" {
			groups[e.Link] = append(groups[e.Link], p)
		}
	}
	for target, ps := range groups {
		t := s[target]
		all := append(ps, target)
		sort.Strings(all)
		for _, p := range ps {
			c := *t
			c.Path = p
			s[p] = &c
		}
		for _, p := range all {
			s[p].Link = all[0]
		}
	}
	return s
}
