package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/internal/refname"
	"github.com/oci2/oci2/transfer"
)

// background is the work a lazy mount does besides serving reads: a
// prefetch profile first, then the rest of the image (--fetch-all).
type background struct {
	mu       sync.Mutex
	prefetch string           // "", running, done, or the error
	fetchAll string           // "", running, done, or the error
	pulled   *transfer.Result // the --fetch-all pull
}

func (b *background) set(field *string, v string) {
	b.mu.Lock()
	*field = v
	b.mu.Unlock()
}

// status fills the state's background fields.
func (b *background) status(st *mountState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st.Prefetch, st.FetchAll, st.Pulled = b.prefetch, b.fetchAll, b.pulled
}

// prefetch fetches a lazy mount's profile before the mount is reported
// ready: all of its chunks at once, a few range requests per pack, every
// pack in parallel, instead of one round trip per file the container
// opens. A failure is reported; the mount serves anyway.
func prefetch(ctx context.Context, f mountFlags, li *loadedImage) {
	if li.lazy == nil || f.prefetch == "" {
		return
	}
	li.bg.set(&li.bg.prefetch, "running")
	li.bg.set(&li.bg.prefetch, doneOr(prefetchProfile(ctx, li, f.prefetch)))
}

// startBackground runs the --fetch-all of a lazy mount.
func (a *app) startBackground(ctx context.Context, f mountFlags, li *loadedImage, arg string) {
	if li.lazy == nil || !f.fetchAll {
		return
	}
	go func() {
		li.bg.set(&li.bg.fetchAll, "running")
		li.bg.set(&li.bg.fetchAll, doneOr(a.fetchAll(ctx, f, li, arg)))
	}()
}

func doneOr(err error) string {
	if err != nil {
		warnf(os.Stderr, "%v", err)
		return err.Error()
	}
	return "done"
}

// prefetchProfile fetches the chunks a profile lists.
func prefetchProfile(ctx context.Context, li *loadedImage, path string) error {
	ids, err := readProfile(path)
	if err != nil {
		return err
	}
	if err := li.lazy.FetchChunks(ctx, li.cr, ids); err != nil {
		return fmt.Errorf("prefetch: %w", err)
	}
	return nil
}

// fetchAll pulls the rest of the image, one request at a time so reads
// through the mount keep most of the bandwidth, and names it in the store:
// the registry is then no longer needed.
func (a *app) fetchAll(ctx context.Context, f mountFlags, li *loadedImage, arg string) error {
	name, err := refname.Normalize(arg)
	if err != nil {
		return err
	}
	ro, err := f.remote.options(warner())
	if err != nil {
		return err
	}
	ro.Jobs = 1
	st, release, err := a.leasedStore(ctx)
	if err != nil {
		return err
	}
	defer release()
	res, err := transfer.Pull(ctx, st, arg, transfer.PullOptions{Options: transfer.Options{Registry: ro}, Name: name})
	if err != nil {
		return fmt.Errorf("fetch-all: %w", err)
	}
	li.bg.mu.Lock()
	li.bg.pulled = res
	li.bg.mu.Unlock()
	return nil
}

// recorder keeps the order in which chunks were first read (--record).
type recorder struct {
	mu  sync.Mutex
	ids []format.ChunkID
}

func (r *recorder) add(id format.ChunkID) {
	r.mu.Lock()
	r.ids = append(r.ids, id)
	r.mu.Unlock()
}

// save writes the profile: one chunk ID a line, first read first. Chunk IDs
// name content, so a profile of one version of an image still finds the
// unchanged files of the next.
func (r *recorder) save(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, id := range r.ids {
		b.WriteString(id.String())
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing the profile: %w", err)
	}
	return nil
}

// readProfile reads a profile --record wrote.
func readProfile(path string) ([]format.ChunkID, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the profile: %w", err)
	}
	defer fh.Close()
	var ids []format.ChunkID
	sc := bufio.NewScanner(fh)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		id, err := format.ParseChunkID(s)
		if err != nil {
			return nil, fmt.Errorf("profile %s line %d: %w", path, line, err)
		}
		ids = append(ids, id)
	}
	return ids, sc.Err()
}
