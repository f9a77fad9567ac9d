package basesource

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/buildkit/util/progress"

	"github.com/oci2/oci2/unpack"
)

// unpackProgress shows the unpack of a base under the FROM vertex: entries
// written of the total, then a summary line.
type unpackProgress struct {
	pw      progress.Writer
	id      string
	started time.Time
	last    time.Time
	st      progress.Status
	stats   unpack.Stats
}

func newUnpackProgress(ctx context.Context, b *Base) *unpackProgress {
	pw, _, _ := progress.NewFromContext(ctx)
	now := time.Now()
	p := &unpackProgress{pw: pw, id: "oci2: unpacking " + b.Ref + " (root " + b.Root().String()[:19] + ")", started: now}
	p.st = progress.Status{Action: "unpacking", Started: &now}
	pw.Write(p.id, p.st)
	return p
}

// update is unpack's Progress callback; at most ten statuses a second.
func (p *unpackProgress) update(u unpack.Progress) {
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	p.st.Current, p.st.Total = int(u.Entries), int(u.EntriesTotal)
	p.pw.Write(p.id, p.st)
}

func (p *unpackProgress) close(err error) {
	now := time.Now()
	p.st.Completed = &now
	p.pw.Write(p.id, p.st)
	if err == nil {
		msg := fmt.Sprintf("oci2: unpacked %d entries (%s) from the oci2 store", p.stats.Entries,
			units.HumanSize(float64(p.stats.Bytes)))
		p.pw.Write(msg, progress.Status{Started: &p.started, Completed: &now})
	}
	p.pw.Close()
}
