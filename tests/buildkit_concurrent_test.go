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

// TestBuildKitConcurrentExportStats: type=oci2 exports running at once in
// one buildkitd-oci2 each report their own oci2.stats. The images hold
// disjoint random data of the same size, so a write counting another's
// frames or bytes (a shared counter) shows as frames_new over frames or as
// stored_new_bytes near twice the data (as it did with the index's shared
// counters). The exports' chunking statuses (daemon timestamps, from
// buildctl's rawjson progress) prove that two writes overlapped.
//
// Overlap is made by construction, not hoped for: each build's last step
// before its export waits on a barrier in a shared cache mount until all
// of the round's builds have reached it (exportBarrier), so the exports
// start together, and each writes seconds of random data while the others'
// starts differ by the barrier's poll (0.1 s). A round without overlap
// would mean the barrier does not hold: it is run again at most twice,
// then fails.
func TestBuildKitConcurrentExportStats(t *testing.T) {
	d, _, _ := startStoreBaseDaemon(t)
	const size, rounds = 24 << 20, 3
	for round := range rounds {
		w := concurrentExports(t, d, round, size)
		if w.overlap() {
			t.Logf("round %d: writes overlapped (%s)", round, w)
			return
		}
		t.Logf("round %d: writes did not overlap (%s), again", round, w)
	}
	t.Fatalf("no two exports wrote at the same time in %d rounds", rounds)
}

// exportDockerfile is build i of a round: its data is copied while the
// barrier stage (on the store base t/base, a busybox) waits until every
// build of the round has touched its file in the round's shared cache
// mount; the empty /barrier it leaves is the final stage's last step, so
// the export follows the barrier. The wait is bounded (120 s). The RUN
// names i so that BuildKit does not merge the builds' barrier steps.
func exportDockerfile(round, i int) string {
	return fmt.Sprintf(`FROM t/base AS barrier
USER 0
RUN --mount=type=cache,id=export-barrier-%[1]d,target=/b,sharing=shared \
    touch /b/%[2]d && n=0 && \
    until [ "$(ls /b | wc -l)" -ge %[3]d ]; do \
      n=$((n+1)); [ $n -le 1200 ] || { echo barrier timeout; exit 1; }; sleep 0.1; \
    done && : > /barrier
FROM scratch
COPY data /data
COPY --from=barrier /barrier /barrier
`, round, i, exportsPerRound)
}

// interval is when an export's write ran, by the daemon's clock.
type interval struct{ start, end time.Time }

// exportsPerRound run at once.
const exportsPerRound = 3

type writeWindows [exportsPerRound]interval

// overlap reports whether two of the writes ran at the same time.
func (w writeWindows) overlap() bool {
	for i := range w {
		for j := range i {
			if w[i].start.Before(w[j].end) && w[j].start.Before(w[i].end) {
				return true
			}
		}
	}
	return false
}

func (w writeWindows) String() string {
	t0 := w[0].start
	for _, i := range w {
		if i.start.Before(t0) {
			t0 = i.start
		}
	}
	var parts []string
	for n, i := range w {
		parts = append(parts, fmt.Sprintf("%d: %.2f-%.2fs", n, i.start.Sub(t0).Seconds(), i.end.Sub(t0).Seconds()))
	}
	return strings.Join(parts, ", ")
}

// concurrentExports builds exportsPerRound images of size random bytes each
// at once and checks each one's stats; it returns when their writes ran.
func concurrentExports(t *testing.T, d *bkDaemon, round, size int) writeWindows {
	t.Helper()
	var wg sync.WaitGroup
	var win writeWindows
	meta := make([]map[string]any, exportsPerRound)
	errs := make([]error, exportsPerRound)
	for i := range exportsPerRound {
		ctxDir := t.TempDir()
		if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(exportDockerfile(round, i)), 0o644); err != nil {
			t.Fatal(err)
		}
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
	for i := range exportsPerRound {
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
