package format

import (
	"strings"
)

// overlayPrefixes are xattr name prefixes that would steer overlayfs when an
// image is mounted; trees carrying them are invalid (SPEC.md §4.2).
var overlayPrefixes = []string{"trusted.overlay.", "user.overlay."}

// validName reports why s is not a valid entry name (SPEC.md §4.2), or "".
func validName(s string) string {
	switch {
	case len(s) == 0:
		return "empty name"
	case len(s) > MaxNameLen:
		return "name longer than 255 bytes"
	case s == "." || s == "..":
		return "name is . or .."
	case strings.IndexByte(s, '/') >= 0:
		return "name contains /"
	case strings.IndexByte(s, 0) >= 0:
		return "name contains NUL"
	}
	return ""
}

// validate checks every rule of SPEC.md §4.2 that applies to decoded values
// (the encoded size limit is checked by Encode).
func (t *Tree) validate() error {
	for i := range t.Entries {
		e := &t.Entries[i]
		if err := e.validate(); err != nil {
			return prefixed(err, "tree entry %d %q", i, e.Name)
		}
		if i > 0 && e.Name <= t.Entries[i-1].Name {
			if e.Name == t.Entries[i-1].Name {
				return invalidf("tree entry %d %q: duplicate name", i, e.Name)
			}
			return invalidf("tree entry %d %q: names not sorted", i, e.Name)
		}
	}
	return nil
}

func (e *Entry) validate() error {
	if msg := validName(e.Name); msg != "" {
		return invalidf("%s", msg)
	}
	if e.Type < TypeDir || e.Type > TypeFifo {
		return invalidf("unknown entry type %d", e.Type)
	}
	if e.Mode&^ModeMask != 0 {
		return invalidf("mode %#o has bits outside %#o", e.Mode, ModeMask)
	}
	if e.MtimeNsec >= 1e9 {
		return invalidf("mtime nanoseconds %d not below 1e9", e.MtimeNsec)
	}
	// chown(2) reads (uid_t)-1 as "leave unchanged": an unpack as root would
	// keep the new file's owner 0 and then apply a setuid mode, making a
	// setuid-root file out of metadata that names no root.
	if e.UID == NoOwner {
		return invalidf("uid %d is (uid_t)-1, not an owner", e.UID)
	}
	if e.GID == NoOwner {
		return invalidf("gid %d is (gid_t)-1, not an owner", e.GID)
	}
	if err := validateXattrs(e.Xattrs); err != nil {
		return err
	}
	if err := e.validatePayload(); err != nil {
		return err
	}
	return validateExtensions(e.Extensions)
}

func validateXattrs(xs []Xattr) error {
	if len(xs) > MaxXattrs {
		return invalidf("%d xattrs, more than %d", len(xs), MaxXattrs)
	}
	for i, x := range xs {
		switch {
		case len(x.Name) == 0:
			return invalidf("xattr %d: empty name", i)
		case len(x.Name) > MaxXattrNameLen:
			return invalidf("xattr %d: name longer than %d bytes", i, MaxXattrNameLen)
		case strings.IndexByte(x.Name, 0) >= 0:
			return invalidf("xattr %d %q: name contains NUL", i, x.Name)
		case len(x.Value) > MaxXattrValueLen:
			return invalidf("xattr %d %q: value of %d bytes, more than %d", i, x.Name, len(x.Value), MaxXattrValueLen)
		case i > 0 && x.Name <= xs[i-1].Name:
			return invalidf("xattr %d %q: names not sorted", i, x.Name)
		}
		for _, p := range overlayPrefixes {
			if strings.HasPrefix(x.Name, p) {
				return invalidf("xattr %d %q: overlayfs xattr not allowed", i, x.Name)
			}
		}
	}
	return nil
}

func validateExtensions(xs []Extension) error {
	for i, x := range xs {
		if i > 0 && x.Tag <= xs[i-1].Tag {
			return invalidf("extension %d (tag %d): tags not increasing", i, x.Tag)
		}
		if x.Tag&1 != 0 {
			return invalidf("unsupported critical extension %d", x.Tag)
		}
	}
	return nil
}

// validatePayload checks the type-specific fields and that the fields of
// other types are unset (they would be lost by encoding).
func (e *Entry) validatePayload() error {
	if e.Type != TypeDir && !e.Tree.IsZero() {
		return invalidf("tree digest set on a non-directory")
	}
	if e.Type != TypeReg && (e.Size != 0 || len(e.Extents) != 0) {
		return invalidf("size or extents set on a non-regular file")
	}
	if e.Type != TypeSymlink && e.Type != TypeHardlink && e.Target != "" {
		return invalidf("link target set on a non-link")
	}
	if e.Type != TypeChar && e.Type != TypeBlock && (e.DevMajor != 0 || e.DevMinor != 0) {
		return invalidf("device numbers set on a non-device")
	}
	switch e.Type {
	case TypeReg:
		return validateExtents(e.Extents, e.Size)
	case TypeSymlink:
		return validateTarget(e.Target, "symlink target")
	case TypeHardlink:
		if e.Mode != 0 || e.UID != 0 || e.GID != 0 || e.MtimeSec != 0 || e.MtimeNsec != 0 || len(e.Xattrs) != 0 {
			return invalidf("hardlink carries metadata (mode, owner, mtime and xattrs must be zero)")
		}
		if err := validateTarget(e.Target, "hardlink target"); err != nil {
			return err
		}
		for _, c := range strings.Split(e.Target, "/") {
			if msg := validName(c); msg != "" {
				return invalidf("hardlink target %q: component %q: %s", e.Target, c, msg)
			}
		}
	}
	return nil
}

func validateTarget(t, what string) error {
	switch {
	case len(t) == 0:
		return invalidf("empty %s", what)
	case len(t) > MaxLinkLen:
		return invalidf("%s longer than %d bytes", what, MaxLinkLen)
	case strings.IndexByte(t, 0) >= 0:
		return invalidf("%s contains NUL", what)
	}
	return nil
}

func validateExtents(xs []Extent, size uint64) error {
	var sum uint64
	for i, x := range xs {
		switch {
		case x.Length == 0:
			return invalidf("extent %d: zero length", i)
		case !x.Zero && x.Length > ChunkMaxSize:
			return invalidf("extent %d: data extent of %d bytes, more than %d", i, x.Length, ChunkMaxSize)
		case x.Zero && !x.Chunk.IsZero():
			return invalidf("extent %d: zero extent with a chunk id", i)
		case x.Zero && (x.Length%ZeroBlockSize != 0 || x.Length < ZeroRunMin):
			return invalidf("extent %d: zero extent of %d bytes, not a multiple of %d of at least %d",
				i, x.Length, ZeroBlockSize, ZeroRunMin)
		case x.Zero && i > 0 && xs[i-1].Zero:
			return invalidf("extent %d: adjacent zero extents", i)
		}
		if sum+x.Length < sum {
			return invalidf("extent %d: extent lengths overflow", i)
		}
		sum += x.Length
	}
	if sum != size {
		return invalidf("extent lengths sum to %d, not size %d", sum, size)
	}
	return nil
}
