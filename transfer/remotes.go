package transfer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/store"
)

// Remotes records which image manifests went to or came from which
// repositories, so that a push can mount the packs a repository lacks from
// a sibling repository of the same registry (one request instead of an
// upload) and skip asking about blobs of a manifest the target already has.
// It is a cache of hints: a lost update only costs requests. Safe for
// concurrent use.
type Remotes struct {
	path string

	mu    sync.Mutex
	repos map[string]*remoteRepo
}

type remoteRepo struct {
	Manifests []digest.Digest `json:"manifests"` // most recent last
	Used      time.Time       `json:"used"`
}

type remotesFile struct {
	Version      int                    `json:"version"`
	Repositories map[string]*remoteRepo `json:"repositories"`
}

// Bounds of the record.
const (
	maxRemoteRepos     = 64
	maxRemoteManifests = 16
)

// RemotesFile is where a local store keeps its record, under its private
// directory.
func RemotesFile(storeDir string) string { return filepath.Join(storeDir, "oci2", "remotes.json") }

// LoadRemotes reads the record at path (an absent or unreadable file is an
// empty record: it only holds hints).
func LoadRemotes(path string) *Remotes {
	r := &Remotes{path: path, repos: map[string]*remoteRepo{}}
	b, err := os.ReadFile(path)
	if err != nil {
		return r
	}
	var f remotesFile
	if json.Unmarshal(b, &f) == nil && f.Version == 1 && f.Repositories != nil {
		r.repos = f.Repositories
	}
	return r
}

// Record notes that repo holds the manifests.
func (r *Remotes) Record(repo string, manifests []digest.Digest) {
	if r == nil || len(manifests) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rr := r.repos[repo]
	if rr == nil {
		rr = &remoteRepo{}
		r.repos[repo] = rr
	}
	for _, m := range manifests {
		for i, old := range rr.Manifests {
			if old == m {
				rr.Manifests = append(rr.Manifests[:i], rr.Manifests[i+1:]...)
				break
			}
		}
		rr.Manifests = append(rr.Manifests, m)
	}
	if n := len(rr.Manifests); n > maxRemoteManifests {
		rr.Manifests = rr.Manifests[n-maxRemoteManifests:]
	}
	rr.Used = time.Now().UTC()
	if len(r.repos) > maxRemoteRepos {
		names := make([]string, 0, len(r.repos))
		for n := range r.repos {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool { return r.repos[names[i]].Used.Before(r.repos[names[j]].Used) })
		for _, n := range names[:len(names)-maxRemoteRepos] {
			delete(r.repos, n)
		}
	}
}

// Manifests returns the manifests recorded for repo.
func (r *Remotes) Manifests(repo string) []digest.Digest {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rr := r.repos[repo]; rr != nil {
		return append([]digest.Digest(nil), rr.Manifests...)
	}
	return nil
}

// Repositories returns the recorded repository names, sorted.
func (r *Remotes) Repositories() []string {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.repos))
	for n := range r.repos {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Save writes the record atomically.
func (r *Remotes) Save() error {
	if r == nil || r.path == "" {
		return nil
	}
	r.mu.Lock()
	b, err := json.MarshalIndent(remotesFile{Version: 1, Repositories: r.repos}, "", "  ")
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(r.path), 0o755); err != nil {
		return fmt.Errorf("saving %s: %w", r.path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(r.path), "remotes-*.json")
	if err != nil {
		return fmt.Errorf("saving %s: %w", r.path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("saving %s: %w", r.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving %s: %w", r.path, err)
	}
	if err := os.Rename(tmp.Name(), r.path); err != nil {
		return fmt.Errorf("saving %s: %w", r.path, err)
	}
	return nil
}

// blobsOf returns the config and layer digests of the recorded manifests
// that the local store still holds.
func blobsOf(ctx context.Context, st store.Reader, manifests []digest.Digest) (map[digest.Digest]bool, []digest.Digest) {
	blobs := map[digest.Digest]bool{}
	var found []digest.Digest
	for _, md := range manifests {
		b, err := st.ReadBlob(ctx, md, 4<<20)
		if err != nil {
			continue // gone from the store (gc), or unreadable: no hint
		}
		var m ocispec.Manifest
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		found = append(found, md)
		blobs[m.Config.Digest] = true
		for _, l := range m.Layers {
			blobs[l.Digest] = true
		}
	}
	return blobs, found
}
