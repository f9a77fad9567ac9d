package writer

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/oci2/oci2/format"
)

// StatCache is the stat cache of source files that may change at any time
// (`oci2 create` of a directory): it keeps the extents of files read from
// source directories by (source directory, relative path) with the file's
// device, inode, size, mtime and ctime, and Write skips reading a file
// whose five are unchanged, under the racy-git rule (trusted); its chunks
// are then read only if the store lacks their frame. Design and trust
// rules: SPEC.md §8.3.
//
// StatCache is safe for concurrent use; the caller loads it from and saves
// it to the store's private directory.
type StatCache struct {
	mu      sync.Mutex
	written int64 // unix ns of the Save that wrote the loaded state; 0: none
	dirs    map[string]map[string]cacheEntry
	// sections are the encoded entries of loaded directories not decoded
	// yet: a create decodes only its own source directory's, and Save
	// copies the others as they are, so a create's cost does not grow with
	// the files of every tree the store ever read.
	sections map[string][]byte
	perDir   // each directory's own file (statcache_dirs.go)
}

type cacheEntry struct {
	dev, ino               uint64
	size, mtimeNs, ctimeNs int64
	statNs                 int64 // when the file was looked at
	extents                []format.Extent
}

// Timestamp granularity margins of the racy-git rule.
const (
	coarseMargin = int64(time.Second)
	fineMargin   = int64(100 * time.Millisecond)
)

// trusted applies the racy-git rule to an entry saved at written: its ctime
// is older than both its stat and the save by more than the filesystem's
// timestamp granularity (coarse: no sub-second part; SPEC.md §8.3).
func (e *cacheEntry) trusted(written int64) bool {
	margin := fineMargin
	if e.ctimeNs%int64(time.Second) == 0 {
		margin = coarseMargin
	}
	return e.ctimeNs < min(e.statNs, written)-margin
}

// NewStatCache returns an empty cache.
func NewStatCache() *StatCache {
	return &StatCache{dirs: make(map[string]map[string]cacheEntry), sections: make(map[string][]byte), perDir: newPerDir()}
}

// dirLocked returns the entries of source directory dir, from its own file
// or else its section of the single file, on first use (a damaged one
// counts as empty).
func (c *StatCache) dirLocked(dir string) map[string]cacheEntry {
	if m, ok := c.dirs[dir]; ok {
		return m
	}
	if m, ok := c.loadDirLocked(dir); ok {
		return m
	}
	if sec, ok := c.sections[dir]; ok {
		delete(c.sections, dir)
		m, err := decodeSection(sec)
		if err != nil {
			m = nil
		}
		c.dirs[dir] = m
	}
	return c.dirs[dir]
}

// apply sets the extents of every unchanged file of p from the cache.
func (c *StatCache) apply(p *plan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range p.files {
		sf, ok := w.n.Content.(*SourceFile)
		if !ok || len(w.e.Extents) > 0 || w.e.Size == 0 || uint64(sf.Size) != w.e.Size {
			continue
		}
		e, ok := c.dirLocked(sf.Dir)[sf.Rel]
		if !ok || e.dev != sf.Dev || e.ino != sf.Ino || e.size != sf.Size ||
			e.mtimeNs != sf.MtimeNs || e.ctimeNs != sf.CtimeNs || !e.trusted(c.writtenLocked(sf.Dir)) {
			continue
		}
		w.e.Extents = e.extents
		w.cached = true
	}
}

// record replaces the entries of p's source directories by p's files.
func (c *StatCache) record(p *plan) {
	fresh := make(map[string]map[string]cacheEntry)
	for _, w := range p.files {
		sf, ok := w.n.Content.(*SourceFile)
		if !ok || w.e.Size == 0 || len(w.e.Extents) == 0 {
			continue
		}
		m := fresh[sf.Dir]
		if m == nil {
			m = make(map[string]cacheEntry)
			fresh[sf.Dir] = m
		}
		m[sf.Rel] = cacheEntry{dev: sf.Dev, ino: sf.Ino, size: sf.Size,
			mtimeNs: sf.MtimeNs, ctimeNs: sf.CtimeNs, statNs: sf.StatNs, extents: w.e.Extents}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for dir, m := range fresh {
		delete(c.sections, dir)
		c.dirs[dir] = m
		c.dirty[dir] = true
	}
}

// Len returns the number of cached files.
func (c *StatCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.dirs {
		n += len(m)
	}
	for _, sec := range c.sections {
		r := &cacheReader{b: sec}
		n += int(r.uvarint())
	}
	return n
}

const statCacheMagic = "oci2-filescache-2\n"

// ErrCorruptCache is returned by LoadStatCache for a damaged cache file.
var ErrCorruptCache = errors.New("corrupt files cache")

// LoadStatCache reads a cache saved by Save. A missing file gives an empty
// cache. A damaged file gives an empty cache and an error wrapping
// ErrCorruptCache, which the caller may report and ignore.
func LoadStatCache(path string) (*StatCache, error) {
	c := NewStatCache()
	c.path = path
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("loading files cache: %w", err)
	}
	if bytes.HasPrefix(b, []byte("oci2-filescache-")) && !bytes.HasPrefix(b, []byte(statCacheMagic)) {
		return c, nil // another version: start over
	}
	if err := c.decode(b); err != nil {
		c = NewStatCache()
		c.path, c.single = path, true // the next save replaces it
		return c, fmt.Errorf("loading files cache %s: %w: %v", path, ErrCorruptCache, err)
	}
	c.single = true
	return c, nil
}

// Save writes the directories recorded since the last save, each to its
// own file (see statcache_dirs.go), atomically (temporary file, fsync,
// rename); from then on their entries may be trusted (see StatCache).
func (c *StatCache) Save(path string) error {
	if err := c.saveDirs(path); err != nil {
		return fmt.Errorf("saving files cache: %w", err)
	}
	return nil
}

func (c *StatCache) encode(now int64) []byte {
	// Sized once: the sections copied are most of a big cache.
	size := 64 + sha256.Size
	for d, sec := range c.sections {
		size += len(d) + len(sec) + binary.MaxVarintLen64
	}
	for d, m := range c.dirs {
		size += len(d) + len(m)*96
	}
	b := make([]byte, 0, size)
	b = append(b, statCacheMagic...)
	b = binary.AppendVarint(b, now)
	dirs := make([]string, 0, len(c.dirs)+len(c.sections))
	for d := range c.dirs {
		dirs = append(dirs, d)
	}
	for d := range c.sections {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	b = binary.AppendUvarint(b, uint64(len(dirs)))
	for _, d := range dirs {
		if sec, ok := c.sections[d]; ok {
			b = appendString(b, d)
			b = append(b, sec...)
			continue
		}
		m := c.dirs[d]
		rels := make([]string, 0, len(m))
		for r := range m {
			rels = append(rels, r)
		}
		sort.Strings(rels)
		b = appendString(b, d)
		b = binary.AppendUvarint(b, uint64(len(rels)))
		for _, r := range rels {
			e := m[r]
			b = appendString(b, r)
			b = binary.AppendUvarint(b, e.dev)
			b = binary.AppendUvarint(b, e.ino)
			b = binary.AppendVarint(b, e.size)
			b = binary.AppendVarint(b, e.mtimeNs)
			b = binary.AppendVarint(b, e.ctimeNs)
			b = binary.AppendVarint(b, e.statNs)
			b = binary.AppendUvarint(b, uint64(len(e.extents)))
			for _, x := range e.extents {
				if x.Zero {
					b = append(b, 1)
					b = binary.AppendUvarint(b, x.Length)
					continue
				}
				b = append(b, 0)
				b = binary.AppendUvarint(b, x.Length)
				b = append(b, x.Chunk[:]...)
			}
		}
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func (c *StatCache) decode(b []byte) error {
	if len(b) < len(statCacheMagic)+sha256.Size || !bytes.HasPrefix(b, []byte(statCacheMagic)) {
		return errors.New("bad header")
	}
	body := b[:len(b)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(body):]) {
		return errors.New("checksum mismatch")
	}
	r := &cacheReader{b: body[len(statCacheMagic):]}
	c.written = r.varint()
	ndirs := r.uvarint()
	for i := uint64(0); i < ndirs && r.err == nil; i++ {
		dir := r.str()
		start := r.b
		n := r.uvarint()
		for j := uint64(0); j < n && r.err == nil; j++ {
			r.entry(false)
		}
		c.sections[dir] = start[:len(start)-len(r.b)]
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return r.err
}

// decodeSection decodes the entries of one directory.
func decodeSection(sec []byte) (map[string]cacheEntry, error) {
	r := &cacheReader{b: sec}
	n := r.uvarint()
	m := make(map[string]cacheEntry)
	for j := uint64(0); j < n && r.err == nil; j++ {
		rel, e := r.entry(true)
		m[rel] = e
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return m, r.err
}

// entry reads one file's entry; without keep it only passes over it.
func (r *cacheReader) entry(keep bool) (string, cacheEntry) {
	rel := r.lenBytes()
	e := cacheEntry{dev: r.uvarint(), ino: r.uvarint(), size: r.varint(),
		mtimeNs: r.varint(), ctimeNs: r.varint(), statNs: r.varint()}
	nx := r.uvarint()
	if nx > uint64(len(r.b)) {
		r.fail()
		return "", e
	}
	if keep {
		e.extents = make([]format.Extent, 0, nx)
	}
	for k := uint64(0); k < nx && r.err == nil; k++ {
		zero := r.byte1()
		x := format.Extent{Zero: zero == 1, Length: r.uvarint()}
		if zero == 0 {
			id := r.take(32)
			if keep {
				copy(x.Chunk[:], id)
			}
		}
		if keep {
			e.extents = append(e.extents, x)
		}
	}
	if !keep {
		return "", e
	}
	return string(rel), e
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// cacheReader decodes the cache file; the first error sticks.
type cacheReader struct {
	b   []byte
	err error
}

func (r *cacheReader) fail() {
	if r.err == nil {
		r.err = io.ErrUnexpectedEOF
	}
	r.b = nil
}

func (r *cacheReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *cacheReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *cacheReader) take(n int) []byte {
	if n > len(r.b) {
		r.fail()
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *cacheReader) byte1() byte { return r.take(1)[0] }

func (r *cacheReader) str() string { return string(r.lenBytes()) }

// lenBytes reads a length, then that many bytes.
func (r *cacheReader) lenBytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	return r.take(int(n))
}

// writeFileAtomic writes b to path through a synced temporary file.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
