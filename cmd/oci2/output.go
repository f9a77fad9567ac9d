package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/docker/go-units"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// printJSON writes v as indented JSON to stdout.
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// humanBytes formats n with IEC units (1.465MiB), by go-units.
func humanBytes(n int64) string { return units.BytesSize(float64(n)) }

// stderrIsTerminal decides whether progress bars are drawn.
var stderrIsTerminal = term.IsTerminal(int(os.Stderr.Fd()))

// bar is a progress bar on stderr that is a no-op when stderr is not a
// terminal. Its methods are safe for concurrent use.
type bar struct {
	mu   sync.Mutex
	pb   *progressbar.ProgressBar
	desc string
}

// newBar returns a bar that shows nothing until updated.
func newBar() *bar { return &bar{} }

// update shows phase desc at done of total (total <= 0: unknown), counting
// bytes (with units) or items.
func (b *bar) update(desc string, done, total int64, bytes bool) {
	if b == nil || !stderrIsTerminal {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb == nil || desc != b.desc {
		if b.pb != nil {
			b.pb.Finish()
			fmt.Fprintln(os.Stderr)
		}
		if total <= 0 {
			total = -1
		}
		b.pb = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowBytes(bytes),
			progressbar.OptionShowCount(),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetWidth(30),
		)
		b.desc = desc
	}
	if total > 0 && b.pb.GetMax64() != total {
		b.pb.ChangeMax64(total)
	}
	b.pb.Set64(done)
}

// done removes the bar.
func (b *bar) done() {
	if b == nil || !stderrIsTerminal {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pb != nil {
		b.pb.Finish()
		b.pb = nil
	}
}

// warnf prints a warning to stderr.
func warnf(w io.Writer, format string, a ...any) {
	fmt.Fprintf(w, "oci2: warning: "+format+"\n", a...)
}
