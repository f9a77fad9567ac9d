package transfer

import (
	"io"
	"sync"

	"github.com/oci2/oci2/store/registry"
)

// meter serializes progress reports of one phase.
type meter struct {
	mu    sync.Mutex
	fn    func(Progress)
	stats *registry.Stats
	p     Progress
}

func newMeter(fn func(Progress), stats *registry.Stats) *meter {
	return &meter{fn: fn, stats: stats}
}

// phase starts a phase with its totals.
func (m *meter) phase(name string, total, bytesTotal int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.p = Progress{Phase: name, Total: total, BytesTotal: bytesTotal}
	m.report()
}

// add counts done items and bytes.
func (m *meter) add(done, bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.p.Done += done
	m.p.Bytes += bytes
	m.report()
}

func (m *meter) report() {
	if m.fn == nil {
		return
	}
	m.p.Requests = m.stats.Snapshot().Requests
	m.fn(m.p)
}

// reader counts bytes read from rc as progress.
func (m *meter) reader(rc io.ReadCloser) io.ReadCloser {
	if m.fn == nil {
		return rc
	}
	return &meteredReader{ReadCloser: rc, m: m}
}

type meteredReader struct {
	io.ReadCloser
	m *meter
}

func (r *meteredReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.m.add(0, int64(n))
	}
	return n, err
}
