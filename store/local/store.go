package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/store"
)

// Paths inside a store directory.
const (
	layoutFile = ocispec.ImageLayoutFile // "oci-layout"
	indexFile  = "index.json"
	blobsDir   = ocispec.ImageBlobsDir // "blobs"
	privDir    = "oci2"                // store-private state
	ingestDir  = "oci2/ingest"         // temp files of writes in progress
	indexLock  = "oci2/index.lock"     // flock serializing index.json updates
	gcLock     = "oci2/gc.lock"        // flock: leases shared, gc exclusive
	indexTemp  = "oci2/index.json.tmp" // written under indexLock, renamed over index.json
	chunkIndex = "oci2/index"          // index files of package store/index (SPEC.md §8.2)
)

// Store is a local directory store. It is safe for concurrent use by many
// goroutines and many processes.
type Store struct {
	dir   string
	refMu sync.Mutex // serializes this process's index updates before the flock

	pend pending // written since the last Sync (sync.go)

	unnamedOnce sync.Once
	unnamedOK   bool // blobs are written as unnamed files (tmpfile.go)

	heldMu sync.Mutex
	held   map[*os.File]struct{} // lock files of unreleased leases
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.RangeReader = (*Store)(nil)
)

// DefaultDir is the store used when none is named: $OCI2_STORE, else
// $XDG_DATA_HOME/oci2, else ~/.local/share/oci2.
func DefaultDir() (string, error) {
	if d := os.Getenv("OCI2_STORE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "oci2"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("default store directory: %w", err)
	}
	return filepath.Join(home, ".local", "share", "oci2"), nil
}

// Open opens the store in dir, creating dir and the layout when missing. An
// existing OCI image layout is adopted; a non-empty directory that is not
// one is refused.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &Store{dir: abs}
	if err := s.init(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	return s, nil
}

// Dir returns the store's absolute directory.
func (s *Store) Dir() string { return s.dir }

// IndexDir returns the directory of the store's index files, which package
// store/index reads and writes (index.WithDir); the store only keeps it out
// of the layout's way.
func (s *Store) IndexDir() string { return s.path(chunkIndex) }

func (s *Store) path(rel string) string { return filepath.Join(s.dir, filepath.FromSlash(rel)) }

// init checks or creates the layout. oci-layout is written last, so a
// directory holding only our own entries is a creation that was interrupted
// and is resumed.
func (s *Store) init() error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	haveLayout, err := s.checkLayoutFile()
	if err != nil {
		return err
	}
	if !haveLayout {
		if err := s.checkAdoptable(); err != nil {
			return err
		}
	}
	for _, d := range []string{blobsDir + "/sha256", ingestDir} {
		if err := os.MkdirAll(s.path(d), 0o755); err != nil {
			return err
		}
	}
	if err := s.ensureIndex(); err != nil {
		return err
	}
	if !haveLayout {
		// A unique temp file: processes may create the same store at once.
		tmp, err := os.CreateTemp(s.path(ingestDir), "oci-layout-*")
		if err != nil {
			return err
		}
		tmp.Close()
		b, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
		if err := writeFileAtomic(tmp.Name(), s.path(layoutFile), b); err != nil {
			return err
		}
	}
	return nil
}

// checkLayoutFile reports whether oci-layout exists, and fails unless it
// declares a version this store understands.
func (s *Store) checkLayoutFile() (bool, error) {
	b, err := os.ReadFile(s.path(layoutFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var l ocispec.ImageLayout
	if err := json.Unmarshal(b, &l); err != nil {
		return false, fmt.Errorf("parsing %s: %w", layoutFile, err)
	}
	if l.Version != ocispec.ImageLayoutVersion {
		return false, fmt.Errorf("%s: unsupported imageLayoutVersion %q (want %q)", layoutFile, l.Version, ocispec.ImageLayoutVersion)
	}
	return true, nil
}

// checkAdoptable fails unless dir is empty or holds only entries an
// interrupted creation leaves behind.
func (s *Store) checkAdoptable() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		switch e.Name() {
		case blobsDir, privDir, indexFile:
		default:
			return fmt.Errorf("not an OCI image layout (no %s) and not empty (found %q); refusing to use it as a store", layoutFile, e.Name())
		}
	}
	return nil
}

var _ store.LocalStore = (*Store)(nil)
