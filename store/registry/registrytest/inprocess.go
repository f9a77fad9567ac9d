package registrytest

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// StartInProcess serves go-containerregistry's in-process registry
// (pkg/registry, blobs in memory, per repository) over plain HTTP on
// 127.0.0.1; it stops when t ends. It serves Range reads and chunked
// uploads but neither cross-repository mounts, auth nor TLS: unit tests of
// client logic use it and so need no binary, while tests of mounts, auth
// and TLS use Start (distribution v3). Dir is empty: nothing is on disk.
func StartInProcess(t testing.TB) *Server {
	t.Helper()
	s := &Server{logs: &bytes.Buffer{}}
	h := ggcrregistry.New(
		ggcrregistry.Logger(log.New(&lockedWriter{buf: s.logs}, "", log.Lmicroseconds)),
		ggcrregistry.WithBlobHandler(&repoBlobs{m: map[string][]byte{}}))
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	s.Host = strings.TrimPrefix(ts.URL, "http://")
	return s
}

// lockedWriter serializes the handler goroutines' log writes.
type lockedWriter struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// repoBlobs keeps blobs per repository, as a real registry does:
// ggcr's own in-memory handler shares every blob across repositories, so a
// push to a second repository would find its blobs present already.
type repoBlobs struct {
	mu sync.Mutex
	m  map[string][]byte // key(repo, digest)
}

// key names a blob of a repository. ggcr v0.21.7 passes "NAME/blobs" as
// the repository of an upload's Put and "NAME" elsewhere (it cuts the path
// before ".../uploads/ID" and before ".../blobs/DIGEST" at the same depth),
// so the suffix is dropped: no test repository is named ".../blobs".
func key(repo string, h v1.Hash) string {
	return strings.TrimSuffix(repo, "/blobs") + "@" + h.String()
}

func (b *repoBlobs) blob(repo string, h v1.Hash) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.m[key(repo, h)]
	if !ok {
		return nil, ggcrregistry.ErrNotFound
	}
	return data, nil
}

func (b *repoBlobs) Stat(_ context.Context, repo string, h v1.Hash) (int64, error) {
	data, err := b.blob(repo, h)
	return int64(len(data)), err
}

// Get returns a plain reader, not an io.ReaderAt: ggcr then streams the
// range, so a range running past the end comes back short, as from
// distribution, instead of 416 (which RFC 9110 keeps for a range that
// starts past the end).
func (b *repoBlobs) Get(_ context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	data, err := b.blob(repo, h)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Put reads rc to the end: ggcr verifies digest and size as it is read.
func (b *repoBlobs) Put(_ context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[key(repo, h)] = data
	return nil
}

func (b *repoBlobs) Delete(_ context.Context, repo string, h v1.Hash) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[key(repo, h)]; !ok {
		return ggcrregistry.ErrNotFound
	}
	delete(b.m, key(repo, h))
	return nil
}
