package basesource

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/buildkit/util/progress"

	"github.com/oci2/oci2/image/unpack"
	"github.com/oci2/oci2/transfer"
)

// statusLine is one progress line under the build step (the FROM vertex,
// or the metadata vertex of a pull): an action with current/total, at most
// ten updates a second, then a one-line summary.
type statusLine struct {
	pw      progress.Writer
	id      string
	started time.Time
	last    time.Time
	st      progress.Status
}

func newStatusLine(ctx context.Context, id, action string) *statusLine {
	pw, _, _ := progress.NewFromContext(ctx)
	now := time.Now()
	l := &statusLine{pw: pw, id: id, started: now, st: progress.Status{Action: action, Started: &now}}
	pw.Write(id, l.st)
	return l
}

func (l *statusLine) set(action string, current, total int64) {
	now := time.Now()
	if action == l.st.Action && now.Sub(l.last) < 100*time.Millisecond {
		return
	}
	l.last = now
	l.st.Action, l.st.Current, l.st.Total = action, int(current), int(total)
	l.pw.Write(l.id, l.st)
}

// note shows msg as a finished line of its own.
func (l *statusLine) note(msg string) {
	now := time.Now()
	l.pw.Write(msg, progress.Status{Started: &now, Completed: &now})
}

// finish completes the line and shows summary, when not empty.
func (l *statusLine) finish(summary string) {
	now := time.Now()
	l.st.Completed = &now
	l.pw.Write(l.id, l.st)
	if summary != "" {
		l.pw.Write(summary, progress.Status{Started: &l.started, Completed: &now})
	}
	l.pw.Close()
}

// unpackProgress shows the unpack of a base: entries written of the total.
type unpackProgress struct {
	*statusLine
	stats unpack.Stats
}

func newUnpackProgress(ctx context.Context, b *Base) *unpackProgress {
	id := "oci2: unpacking " + b.Ref + " (root " + b.Root().String()[:19] + ")"
	return &unpackProgress{statusLine: newStatusLine(ctx, id, "unpacking")}
}

func (p *unpackProgress) update(u unpack.Progress) { p.set("unpacking", u.Entries, u.EntriesTotal) }

func (p *unpackProgress) close(err error) {
	var msg string
	if err == nil {
		msg = fmt.Sprintf("oci2: unpacked %d entries (%s) from the oci2 store", p.stats.Entries,
			units.HumanSize(float64(p.stats.Bytes)))
	}
	p.finish(msg)
}

// pullProgress shows a pull of a base: bytes of each phase, then what was
// present, rebuilt and fetched (the tests read that line).
type pullProgress struct{ *statusLine }

func newPullProgress(ctx context.Context, ref string) *pullProgress {
	return &pullProgress{newStatusLine(ctx, "oci2: pulling "+ref, "pulling")}
}

func (p *pullProgress) update(tp transfer.Progress) { p.set(tp.Phase, tp.Bytes, tp.BytesTotal) }

// log shows a transfer warning (a retry, a registry ignoring Range).
func (p *pullProgress) log(msg string) { p.note("oci2: " + msg) }

func (p *pullProgress) close(res *transfer.Result, err error) {
	var msg string
	if err == nil && res != nil {
		msg = fmt.Sprintf("oci2: %d frames present, %d rebuilt, %d fetched (%d bytes, %d requests)",
			res.FramesPresent, res.FramesRebuilt, res.FramesFetched, res.BytesFetched, res.Requests)
	}
	p.finish(msg)
}
