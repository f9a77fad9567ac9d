package convert

import (
	"archive/tar"
	"encoding/base64"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/oci2/oci2/format"
)

// entryFromHeader converts a tar header's metadata. Hardlinks are resolved
// by the caller.
func entryFromHeader(hdr *tar.Header) (format.Entry, error) {
	var e format.Entry
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		e.Type = format.TypeReg
		if hdr.Size < 0 {
			return e, fmt.Errorf("negative size %d", hdr.Size)
		}
		e.Size = uint64(hdr.Size)
	case tar.TypeDir:
		e.Type = format.TypeDir
	case tar.TypeSymlink:
		e.Type = format.TypeSymlink
		if n := len(hdr.Linkname); n == 0 || n > maxTargetLen || strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return e, fmt.Errorf("invalid symlink target (length %d)", n)
		}
		e.Target = hdr.Linkname
	case tar.TypeChar, tar.TypeBlock:
		e.Type = format.TypeChar
		if hdr.Typeflag == tar.TypeBlock {
			e.Type = format.TypeBlock
		}
		if hdr.Devmajor < 0 || hdr.Devmajor > 1<<32-1 || hdr.Devminor < 0 || hdr.Devminor > 1<<32-1 {
			return e, fmt.Errorf("device number %d:%d out of range", hdr.Devmajor, hdr.Devminor)
		}
		e.DevMajor, e.DevMinor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
	case tar.TypeFifo:
		e.Type = format.TypeFifo
	default:
		return e, fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	e.Mode = uint32(hdr.Mode) & format.ModeMask
	// format.NoOwner is (uid_t)-1: chown would leave the owner unchanged.
	if hdr.Uid < 0 || hdr.Uid >= format.NoOwner || hdr.Gid < 0 || hdr.Gid >= format.NoOwner {
		return e, fmt.Errorf("uid/gid %d/%d out of range (0 to %d; %d is (uid_t)-1, not an owner)",
			hdr.Uid, hdr.Gid, format.NoOwner-1, format.NoOwner)
	}
	e.UID, e.GID = uint32(hdr.Uid), uint32(hdr.Gid)
	e.MtimeSec = hdr.ModTime.Unix()
	e.MtimeNsec = uint32(hdr.ModTime.Nanosecond())
	xs, err := xattrsFromPAX(hdr.PAXRecords)
	if err != nil {
		return e, err
	}
	e.Xattrs = xs
	return e, nil
}

// xattrsFromPAX extracts SCHILY.xattr.* records (Go, GNU tar, star) and
// LIBARCHIVE.xattr.* records (bsdtar: URL-encoded name, base64 value),
// sorted by name.
func xattrsFromPAX(recs map[string]string) ([]format.Xattr, error) {
	all := map[string]string{}
	for k, v := range recs {
		enc, ok := strings.CutPrefix(k, paxLibarchiveXattr)
		if !ok {
			continue
		}
		name, err := url.PathUnescape(enc)
		if err != nil {
			return nil, fmt.Errorf("xattr record %q: %w", k, err)
		}
		val, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
		if err != nil {
			return nil, fmt.Errorf("xattr record %q: %w", k, err)
		}
		all[name] = string(val)
	}
	for k, v := range recs {
		if name, ok := strings.CutPrefix(k, paxXattr); ok {
			all[name] = v // SCHILY wins when both are present
		}
	}
	var xs []format.Xattr
	for name, v := range all {
		switch {
		case name == "" || len(name) > maxNameLen || strings.IndexByte(name, 0) >= 0:
			return nil, fmt.Errorf("invalid xattr name %q", name)
		case strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay."):
			return nil, fmt.Errorf("xattr %q refused: overlayfs xattrs would steer the overlay mount", name)
		case len(v) > maxXattrValue:
			return nil, fmt.Errorf("xattr %q: value of %d bytes exceeds %d", name, len(v), maxXattrValue)
		}
		xs = append(xs, format.Xattr{Name: name, Value: []byte(v)})
	}
	if len(xs) > maxXattrs {
		return nil, fmt.Errorf("%d xattrs exceed %d", len(xs), maxXattrs)
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].Name < xs[j].Name })
	return xs, nil
}
