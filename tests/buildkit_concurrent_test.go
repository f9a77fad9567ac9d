package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBuildKitConcurrentExportStats: two type=oci2 exports running at once
// in one buildkitd-oci2 each report their own oci2.stats. The images hold
// disjoint random data of the same size, so a write counting the other's
// frames or bytes (a shared counter) shows as frames_new over frames or as
// stored_new_bytes near twice the data. The exports' chunking statuses
// (daemon timestamps, from buildctl's rawjson progress) prove that the two
// writes overlapped.
func TestBuildKitConcurrentExportStats(t *testing.T) {
	requireRoot(t)
	requireTools(t, "runc", "buildctl")
	dir := workDir(t)
	d := startBuildkitd(t, dir)
	const size = 24 << 20
	for round := range 3 {
		w := concurrentExports(t, d, round, size)
		if w.overlap() {
			t.Logf("round %d: writes overlapped (%s)", round, w)
			return
		}
		t.Logf("round %d: writes did not overlap (%s), again", round, w)
	}
	t.Fatalf("the two exports never wrote at the same time in 3 rounds")
}

// interval is when an export's write ran, by the daemon's clock.
type interval struct{ start, end time.Time }

type writeWindows [2]interval

func (w writeWindows) overlap() bool {
	return w[0].start.Before(w[1].end) && w[1].start.Before(w[0].end)
}

func (w writeWindows) String() string {
	t0 := w[0].start
	if w[1].start.Before(t0) {
		t0 = w[1].start
	}
	f := func(i interval) string {
		return fmt.Sprintf("%.2f-%.2fs", i.start.Sub(t0).Seconds(), i.end.Sub(t0).Seconds())
	}
	return "a " + f(w[0]) + ", b " + f(w[1])
}

// concurrentExports builds two images of size random bytes each at once and
// checks each one's stats; it returns when their writes ran.
func concurrentExports(t *testing.T, d *bkDaemon, round, size int) writeWindows {
	t.Helper()
	var wg sync.WaitGroup
	var win writeWindows
	meta := make([]map[string]any, 2)
	errs := make([]error, 2)
	for i := range 2 {
		ctxDir := t.TempDir()
		os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nCOPY data /data\n"), 0o644)
		writeRandom(t, filepath.Join(ctxDir, "data"), size, uint64(1000+10*round+i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("oci2-test/concurrent-%d-%d", round, i)
			m, r := d.buildctl(t, nil, ctxDir, "type=oci2,name="+name, "--progress", "rawjson")
			if r.Err != nil {
				errs[i] = fmt.Errorf("buildctl %s: %v\n%s", name, r.Err, clip(r.Stderr))
				return
			}
			meta[i] = m
			win[i], errs[i] = chunkingWindow(r.Stderr)
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		st := statsOf(t, meta[i])
		if len(st) != 1 {
			t.Fatalf("export %d: oci2.stats of %d platforms", i, len(st))
		}
		s := st[0].Stats
		t.Logf("round %d export %d: %d logical bytes, %d frames (%d new), %d bytes stored new",
			round, i, s.LogicalBytes, s.Frames, s.FramesNew, s.StoredNew)
		if s.LogicalBytes != int64(size) {
			t.Errorf("export %d: logical_bytes %d, want %d", i, s.LogicalBytes, size)
		}
		if s.FramesNew > s.Frames || s.FramesNew == 0 {
			t.Errorf("export %d: frames_new %d of %d frames: counts another write's frames", i, s.FramesNew, s.Frames)
		}
		// Random data stores at its size plus zstd's few bytes a frame and
		// the tree; the other export's data would double it.
		if s.StoredNew < int64(size) || s.StoredNew > int64(size)*5/4 {
			t.Errorf("export %d: stored_new_bytes %d, want its own %d data bytes and a little more", i, s.StoredNew, size)
		}
	}
	return win
}

// chunkingWindow finds the exporter's "chunking <platform>" status in
// buildctl's rawjson progress and returns when it started and completed.
func chunkingWindow(progress string) (interval, error) {
	var iv interval
	sc := bufio.NewScanner(strings.NewReader(progress))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var st struct {
			Statuses []struct {
				ID        string     `json:"id"`
				Started   *time.Time `json:"started"`
				Completed *time.Time `json:"completed"`
			} `json:"statuses"`
		}
		if json.Unmarshal(sc.Bytes(), &st) != nil {
			continue
		}
		for _, s := range st.Statuses {
			if !strings.HasPrefix(s.ID, "chunking ") {
				continue
			}
			if s.Started != nil && iv.start.IsZero() {
				iv.start = *s.Started
			}
			if s.Completed != nil {
				iv.end = *s.Completed
			}
		}
	}
	if iv.start.IsZero() || iv.end.IsZero() {
		return iv, fmt.Errorf("no chunking status with start and end in the progress:\n%s", clip(progress))
	}
	return iv, nil
}
