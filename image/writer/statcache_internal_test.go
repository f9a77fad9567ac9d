package writer

import (
	"testing"
	"time"
)

func TestRacyRule(t *testing.T) {
	const s = int64(time.Second)
	base := 1700000000 * s
	for _, c := range []struct {
		ctime, stat, written int64
		want                 bool
	}{
		{base + 5e6, base + 2*s, base + 3*s, true},         // old file
		{base + 5e6, base + 5e6 + 50e6, base + 3*s, false}, // changed 50ms before the stat
		{base + 5e6, base + 5e6 + 150e6, base + 3*s, true}, // 150ms before
		{base, base + s/2, base + 3*s, false},              // whole-second ctime: 1s margin
		{base, base + 2*s, base + 3*s, true},               //
		{base + 5e6, base + 2*s, 0, false},                 // never saved
		{base + 5e6, base + 2*s, base + 5e6 + 10e6, false}, // saved right after the change
		{base + 5e6, base + 5e6 + 10e6, base + 9*s, false}, // saved late, looked at early
	} {
		e := cacheEntry{ctimeNs: c.ctime, statNs: c.stat}
		if got := e.trusted(c.written); got != c.want {
			t.Errorf("ctime %d stat %d written %d: trusted=%v, want %v", c.ctime, c.stat, c.written, got, c.want)
		}
	}
}
