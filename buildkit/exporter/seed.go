package exporter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"time"

	"github.com/moby/buildkit/cache"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/snapshot"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/writer"
)

// Caches are a worker's export caches (Opt.Trees, Opt.Cache), for the
// code that makes snapshots the exporter will later see: a base image
// unpacked into a snapshot seeds them (Seed), so that the first export of
// a build on that base neither walks nor reads it.
type Caches struct {
	Trees *TreeCache
	Files *SnapshotFileCache
}

// SeedStats say what Seed gave the caches.
type SeedStats struct {
	Entries int64 // tree entries of the base (TreeCache)
	Files   int64 // regular files with their extents (SnapshotFileCache)
}

// errSeedMismatch is a snapshot that does not hold what the image says
// (an unpack that skipped something): it is not seeded, and the export
// walks it as it would any layer.
var errSeedMismatch = errors.New("snapshot differs from the image")

// Seed gives the caches the tree and file extents of img, which was just
// unpacked into ref, a snapshot with no parent, completely (nothing
// skipped). The image's own trees say what the snapshot holds (names,
// symlink targets, xattrs, hardlinks, extents); one lstat per entry gives
// what only the snapshot knows and the export's walk would see: inode
// numbers and ctimes (the files cache's identity key) and the owners as
// written (host IDs on a user-namespace-remapped daemon, which the export
// maps back). No file is opened and no directory read. An entry whose
// type, mode, size or mtime differs from the image's fails the seeding with
// errSeedMismatch: the caches are left unchanged and the export walks the
// snapshot instead, so a seeded tree is always what a walk would give, and
// the exported image the same as a cold export's.
func (c Caches) Seed(ctx context.Context, ref cache.ImmutableRef, img *reader.Image, cr *reader.ChunkReader,
	g session.Group) (SeedStats, error) {
	if c.Trees == nil && c.Files == nil {
		return SeedStats{}, nil
	}
	chain := ref.LayerChain()
	layers := len(chain)
	chain.Release(context.WithoutCancel(ctx))
	if layers != 1 {
		return SeedStats{}, fmt.Errorf("seeding export caches: snapshot %s has %d layers, want 1", ref.ID(), layers)
	}
	m, err := ref.Mount(ctx, true, g)
	if err != nil {
		return SeedStats{}, fmt.Errorf("seeding export caches: mounting base: %w", err)
	}
	lm := snapshot.LocalMounter(m)
	dir, err := lm.Mount()
	if err != nil {
		return SeedStats{}, fmt.Errorf("seeding export caches: mounting base: %w", err)
	}
	s, err := seedDir(ctx, dir, img, cr)
	if uerr := lm.Unmount(); err == nil && uerr != nil {
		err = fmt.Errorf("unmounting base: %w", uerr)
	}
	if err != nil {
		return SeedStats{}, fmt.Errorf("seeding export caches: %w", err)
	}
	if c.Trees != nil {
		c.Trees.put(ref.ID(), s.root)
	}
	if c.Files != nil && len(s.files) > 0 {
		c.Files.add(s.files)
	}
	return SeedStats{Entries: s.entries, Files: int64(len(s.files))}, nil
}

// seedDir builds the tree and files cache entries of img, unpacked at dir.
func seedDir(ctx context.Context, dir string, img *reader.Image, cr *reader.ChunkReader) (*seeder, error) {
	s := &seeder{dir: dir, dirs: map[string]*writer.Node{}, regular: map[string]*writer.Node{},
		extents: map[string][]format.Extent{}, files: map[fileKey][]format.Extent{}, now: time.Now().UnixNano()}
	if err := reader.Walk(ctx, cr, img.Root, reader.DefaultLimits, s.entry); err != nil {
		return nil, err
	}
	return s, nil
}

// seeder builds the node tree of an unpacked image, as writer.Walker would
// give it, from the image's entries and an lstat of each.
type seeder struct {
	dir     string
	root    *writer.Node
	dirs    map[string]*writer.Node // directories by slash path ("" the root)
	regular map[string]*writer.Node // regular files by path: hardlink targets
	extents map[string][]format.Extent
	files   map[fileKey][]format.Extent
	entries int64
	now     int64
}

// entry is the reader.WalkFunc: it adds the node of e at p.
func (s *seeder) entry(p string, e *format.Entry) error {
	full := s.dir
	if p != "" {
		full = s.dir + "/" + p
	}
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		return fmt.Errorf("%w: %w", errSeedMismatch, &os.PathError{Op: "lstat", Path: full, Err: err})
	}
	n := &writer.Node{}
	n.Name = path.Base(p)
	if p == "" {
		n.Name = ""
	}
	src := e
	if e.Type == format.TypeHardlink {
		// A hardlink shares its target's inode: metadata, xattrs, extents.
		t := s.regular[e.Target]
		if t == nil {
			return fmt.Errorf("%w: %s: hardlink to %q, not a regular file seen before", errSeedMismatch, p, e.Target)
		}
		src = &t.Entry
	}
	if err := s.fill(n, p, src, &st); err != nil {
		return err
	}
	s.entries++
	if p == "" {
		s.root = n
		s.dirs[""] = n
		return nil
	}
	parent := s.dirs[path.Dir(p)]
	if path.Dir(p) == "." {
		parent = s.root
	}
	if parent == nil {
		return fmt.Errorf("%w: %s: no parent directory", errSeedMismatch, p)
	}
	parent.Children = append(parent.Children, n)
	switch n.Type {
	case format.TypeDir:
		s.dirs[p] = n
	case format.TypeReg:
		ext := e.Extents
		if e.Type == format.TypeReg {
			s.regular[p], s.extents[p] = n, slices.Clone(e.Extents)
		} else {
			ext = s.extents[e.Target]
		}
		if n.Size > 0 {
			sf := n.Content.(*writer.SourceFile)
			k := fileKey{path: p, ino: sf.Ino, size: sf.Size, mtime: sf.MtimeNs, ctime: sf.CtimeNs}
			s.files[k] = ext
		}
	}
	return nil
}

// fill sets n as the walk would from st, checking it against the image's
// entry e (the target's for a hardlink). Extents stay out of the node, as
// in a walked tree: the files cache gives them, by the identity key.
func (s *seeder) fill(n *writer.Node, p string, e *format.Entry, st *unix.Stat_t) error {
	want := map[format.EntryType]uint32{
		format.TypeDir: unix.S_IFDIR, format.TypeReg: unix.S_IFREG, format.TypeSymlink: unix.S_IFLNK,
		format.TypeChar: unix.S_IFCHR, format.TypeBlock: unix.S_IFBLK, format.TypeFifo: unix.S_IFIFO,
	}[e.Type]
	mtime := st.Mtim.Nano()
	switch {
	case st.Mode&unix.S_IFMT != want:
		return fmt.Errorf("%w: %s: file type %#o, image type %d", errSeedMismatch, p, st.Mode&unix.S_IFMT, e.Type)
	case st.Mode&format.ModeMask != e.Mode:
		return fmt.Errorf("%w: %s: mode %#o, image %#o", errSeedMismatch, p, st.Mode&format.ModeMask, e.Mode)
	case mtime != e.MtimeSec*1e9+int64(e.MtimeNsec):
		return fmt.Errorf("%w: %s: mtime %d, image %d.%09d", errSeedMismatch, p, mtime, e.MtimeSec, e.MtimeNsec)
	case e.Type == format.TypeReg && uint64(st.Size) != e.Size:
		return fmt.Errorf("%w: %s: size %d, image %d", errSeedMismatch, p, st.Size, e.Size)
	}
	n.Type, n.Mode, n.UID, n.GID = e.Type, e.Mode, st.Uid, st.Gid
	n.MtimeSec, n.MtimeNsec = st.Mtim.Sec, uint32(st.Mtim.Nsec)
	for _, x := range e.Xattrs {
		n.Xattrs = append(n.Xattrs, format.Xattr{Name: x.Name, Value: slices.Clone(x.Value)})
	}
	switch e.Type {
	case format.TypeReg:
		n.Size = uint64(st.Size)
		n.Content = &writer.SourceFile{Dir: s.dir, Rel: p, Path: s.dir + "/" + p, Dev: st.Dev, Ino: st.Ino,
			Size: st.Size, MtimeNs: mtime, CtimeNs: st.Ctim.Nano(), StatNs: s.now}
	case format.TypeSymlink:
		n.Target = e.Target
	case format.TypeChar, format.TypeBlock:
		n.DevMajor, n.DevMinor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	}
	if e.Type != format.TypeDir && st.Nlink > 1 {
		n.Inode = st.Ino
	}
	return nil
}
