package exporter

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/buildkit/util/progress"

	"github.com/oci2/oci2/image/writer"
)

// writeProgress turns the writer's progress callbacks into BuildKit progress
// statuses, shown under the exporter's vertex by buildctl and buildx:
// one line for chunking (bytes done of total), one for the result.
type writeProgress struct {
	pw      progress.Writer
	id      string
	started time.Time
	last    time.Time
	phase   string
	st      progress.Status
}

func newWriteProgress(ctx context.Context, platformID string) *writeProgress {
	pw, _, _ := progress.NewFromContext(ctx)
	now := time.Now()
	p := &writeProgress{pw: pw, id: "chunking " + platformID, started: now}
	p.st = progress.Status{Action: "chunking", Started: &now}
	return p
}

// update is the writer's Progress callback; it writes at most ten
// statuses a second.
func (p *writeProgress) update(wp writer.Progress) {
	now := time.Now()
	if wp.Phase == p.phase && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.phase, p.last = wp.Phase, now
	p.st.Action = wp.Phase
	p.st.Current = int(wp.BytesRead)
	p.st.Total = int(wp.BytesTotal)
	p.pw.Write(p.id, p.st)
}

// close completes the chunking status and reports new vs reused frames.
func (p *writeProgress) close(res *writer.Result, err error) {
	now := time.Now()
	p.st.Completed = &now
	if res != nil {
		p.st.Current = int(res.Stats.LogicalBytes)
		p.st.Total = int(res.Stats.LogicalBytes)
	}
	p.pw.Write(p.id, p.st)
	if err == nil && res != nil {
		s := res.Stats
		msg := fmt.Sprintf("%s: %d files, %d chunks; frames %d new (%s written), %d reused",
			p.id[len("chunking "):], s.Files, s.Chunks, s.FramesNew,
			units.HumanSize(float64(s.StoredNew)), s.Frames-s.FramesNew)
		p.pw.Write(msg, progress.Status{Started: &p.started, Completed: &now})
	}
	p.pw.Close()
}

// progressLog shows a one-line message under the exporter's vertex.
func progressLog(ctx context.Context, msg string) {
	pw, _, _ := progress.NewFromContext(ctx)
	now := time.Now()
	pw.Write(msg, progress.Status{Started: &now, Completed: &now})
	pw.Close()
}
