package writer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oci2/oci2/image/writer"
	wt "github.com/oci2/oci2/image/writer/writertest"
)

func TestStatCache(t *testing.T) {
	d := t.TempDir()
	err := wt.Create(d, wt.Dir{
		"a":   wt.File{Content: "alpha"},
		"big": wt.File{Content: string(pseudo(5, 400<<10))},
		"sub": wt.Dir{"b": wt.File{Content: "beta"}, "empty": wt.File{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // ctimes must be older than the walk by the margin
	cachePath := filepath.Join(t.TempDir(), "files")
	e := newEnv(t)
	write := func(c *writer.StatCache) *writer.Result {
		t.Helper()
		root, err := writer.FromDir(context.Background(), d, writer.DirOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return e.write(root, writer.Options{Config: testConfig, StatCache: c})
	}
	load := func() *writer.StatCache {
		t.Helper()
		c, err := writer.LoadStatCache(cachePath)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	c := load()
	first := write(c)
	if first.Stats.FilesCached != 0 || c.Len() != 3 {
		t.Errorf("first write: %d cached, cache holds %d files", first.Stats.FilesCached, c.Len())
	}
	if err := c.Save(cachePath); err != nil {
		t.Fatal(err)
	}
	c = load()
	second := write(c)
	if second.Stats.FilesCached != 3 || second.Manifest.Digest != first.Manifest.Digest {
		t.Errorf("second write: %d cached, %s vs %s", second.Stats.FilesCached, second.Manifest.Digest, first.Manifest.Digest)
	}

	// Same size and mtime, new content: the ctime changed, so it is read.
	// changed is taken before the change, so that the ctime is not older
	// than it by more than the kernel's coarse clock tick (taken after, a
	// preemption between Chtimes and time.Now hid an old ctime).
	p := filepath.Join(d, "sub", "b")
	changed := time.Now()
	if err := os.WriteFile(p, []byte("BETA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, wt.Epoch, wt.Epoch); err != nil {
		t.Fatal(err)
	}
	third := write(c)
	// The walk saw sub/b changed under 100ms ago (80 ms, plus up to a tick).
	racy := time.Since(changed) < 80*time.Millisecond
	if third.Stats.FilesCached != 2 || third.Manifest.Digest == first.Manifest.Digest {
		t.Errorf("after a change: %d cached, digest %s", third.Stats.FilesCached, third.Manifest.Digest)
	}
	if got := string(e.fileBytes(e.entries(third.Root)["sub/b"])); got != "BETA" {
		t.Errorf("sub/b = %q", got)
	}
	// sub/b changed just before the walk that cached it: not trusted.
	if err := c.Save(cachePath); err != nil {
		t.Fatal(err)
	}
	if n := write(load()).Stats.FilesCached; racy && n != 2 {
		t.Errorf("racy entry trusted: %d cached", n)
	}

	// A fresh store lacks the frames: the cached files are read again and
	// the image is the same as without a cache.
	want := newEnv(t).write(mustFromDir(t, d), writer.Options{Config: testConfig}).Manifest.Digest
	fresh := newEnv(t)
	res := fresh.write(mustFromDir(t, d), writer.Options{Config: testConfig, StatCache: load()})
	if res.Manifest.Digest != want || res.Stats.FilesCached < 2 {
		t.Errorf("fresh store: %s (%d cached), want %s", res.Manifest.Digest, res.Stats.FilesCached, want)
	}
}

func mustFromDir(t *testing.T, d string) *writer.Node {
	t.Helper()
	root, err := writer.FromDir(context.Background(), d, writer.DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestStatCacheCorrupt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "files")
	if c, err := writer.LoadStatCache(p); err != nil || c.Len() != 0 {
		t.Fatalf("missing cache: %v", err)
	}
	if err := os.WriteFile(p, []byte("oci2-filescache-2\ngarbage that is long enough to have a checksum...."), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := writer.LoadStatCache(p)
	if !errors.Is(err, writer.ErrCorruptCache) || c == nil || c.Len() != 0 {
		t.Errorf("corrupt cache: %v", err)
	}
}
