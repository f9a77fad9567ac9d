package tests

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store/local"
)

// The BuildKit tests start buildkitd-oci2 (as root, OCI worker, temporary
// root and socket), build examples/Dockerfiles with buildctl and docker
// buildx --output type=oci2, run the results with `oci2 unpack --bundle` and
// runc, and compare them with BuildKit's own type=local export. They need
// root, runc and buildctl on PATH (docker and the buildx plugin for the
// buildx part); CI installs them (.ci/run), elsewhere they skip.

// bkExample is one of examples/Dockerfiles with what its image prints.
type bkExample struct {
	name  string
	bases []string // base layouts it needs
	want  []string // lines (substrings) the image prints
}

var bkExamples = []bkExample{
	{"hello", []string{"busybox"}, []string{"hello from an oci2 image", "built on "}},
	{"go", []string{"busybox", "golang"}, []string{"hello from Go on linux/" + runtime.GOARCH}},
	{"debian", []string{"debian"}, []string{"hello from a Debian package", "hello-oci2 1.0-1 installed"}},
	{"overwrite", []string{"busybox"}, []string{
		"/bin/wget: No such file or directory", "/bin/vi: No such file or directory",
		"replaced by the overwrite example", "app:x:1000:1000:app:/home/app:/bin/sh",
		"./dir\n./file\n./file/inner\n", "./only"}},
	{"meta", []string{"busybox", "golang"}, []string{
		"/data/a 644 3 0:0 regular file", "/data/b 644 3 0:0", "/data/sub/c 644 3 0:0",
		"/data/sub 2775 ", "/data/shared 1777 ", "/usr/local/bin/pinger 4755 1 0:0",
		"/data/fifo 644 1 0:0 fifo", "/data/null 644 1 0:0 character special file",
		"/data/a user.oci2.note=kept by oci2",
		"/usr/local/bin/pinger security.capability=hex:0100000200200000000000000000000000000000",
		"/data/sub/readme user.oci2.empty"}},
}

func (e bkExample) dir() string { return filepath.Join("..", "examples", "Dockerfiles", e.name) }

func (e bkExample) missing(b *bases) string {
	for _, n := range e.bases {
		if _, ok := b.digests[n]; !ok {
			return n
		}
	}
	return ""
}

func TestBuildKit(t *testing.T) {
	requireRoot(t)
	requireTools(t, "runc", "buildctl")
	dir := workDir(t)
	b := makeBases(t, dir)
	d := startBuildkitd(t, dir)

	for _, e := range bkExamples {
		t.Run("examples/"+e.name, func(t *testing.T) {
			if n := e.missing(b); n != "" {
				unavailableBase(t, n)
			}
			testExample(t, d, b, e)
		})
	}
	t.Run("reproducible", func(t *testing.T) { testReproducible(t, d, b) })
	t.Run("incremental", func(t *testing.T) { testIncremental(t, d, b, "busybox", 40, false) })
	t.Run("large-base", func(t *testing.T) {
		if _, ok := b.digests["debian-build"]; !ok {
			t.Skip("OCI2_TEST_LARGE=1 and the corpus debian-build tree make the 440 MB base")
		}
		testIncremental(t, d, b, "debian-build", 0, false)
	})
	t.Run("multi-platform", func(t *testing.T) { testMultiPlatform(t, d) })
	t.Run("empty", func(t *testing.T) { testEmpty(t, d) })
	t.Run("external-gc", func(t *testing.T) { testExternalGC(t, d) })
	t.Run("bad-attrs", func(t *testing.T) { testBadAttrs(t, d) })
	t.Run("buildx", func(t *testing.T) { testBuildx(t, d, b) })
	// last: restarts the daemon; the files cache survives it
	t.Run("restart", func(t *testing.T) { testIncremental(t, d, b, "busybox", 8, true) })
}

// unavailableBase skips (fails in CI) a test whose base layout is missing;
// debian needs the corpus tree, which CI builds.
func unavailableBase(t *testing.T, name string) {
	unavailable(t, "base %s not built (debian needs the corpus debian-minbase tree)", name)
}

// testExample builds one example to the oci2 store, runs it, and compares
// its root filesystem with type=local of the same build, metadata and
// nanosecond mtimes included.
func testExample(t *testing.T, d *bkDaemon, b *bases, e bkExample) {
	name := "docker.io/oci2-test/" + e.name + ":latest"
	m := d.mustBuildctl(t, b, e.dir(), "type=oci2,name=oci2-test/"+e.name)
	if got, _ := m["image.name"].(string); got != name {
		t.Errorf("image.name %q, want %q", got, name)
	}
	idx := d.storedIndex(t, name)
	if idx.MediaType != "application/vnd.oci.image.index.v1+json" || len(idx.Manifests) != 1 ||
		idx.Manifests[0].Platform == nil || idx.Manifests[0].Platform.Architecture != runtime.GOARCH {
		t.Errorf("stored index: %+v", idx)
	}
	st := statsOf(t, m)
	t.Logf("%s: %s, %d files, %d logical bytes, %d frames (%d new), %.2fs; tree: %+v",
		e.name, digestOf(t, m), st[0].Stats.Files, st[0].Stats.LogicalBytes, st[0].Stats.Frames,
		st[0].Stats.FramesNew, st[0].Seconds, st[0].Tree)
	// The tree comes from the layer diffs (exporter.TreeCache): the bottom
	// layer walked, each layer above applied from its overlayfs upper
	// directory (whiteouts, opaque directories, type changes); the
	// comparison with type=local below checks the result.
	if st[0].Tree.FullWalk != "" || st[0].Tree.Layers < 2 {
		t.Errorf("tree not built from layer diffs: %+v", st[0].Tree)
	}

	got := checkExampleImage(t, d, b, e, "oci2-test/"+e.name)

	// type=tar: owners and xattrs, as the snapshot has them
	tarFile := filepath.Join(t.TempDir(), "out.tar")
	d.mustBuildctl(t, b, e.dir(), "type=tar,dest="+tarFile)
	compareTarMeta(t, tarFile, got)
}

// checkExampleImage runs the exported image short (as named with name=) of
// example e, checks what it prints, and compares its unpacked root
// filesystem with type=local of the same build; it returns the unpacked
// snapshot.
func checkExampleImage(t *testing.T, d *bkDaemon, b *bases, e bkExample, short string) map[string]*node {
	t.Helper()
	out := d.runImage(t, short)
	for _, w := range e.want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}

	unpacked := filepath.Join(t.TempDir(), "unpacked")
	mustRun(t, nil, bin(t, "oci2"), "--store", d.store, "unpack", "docker.io/"+short+":latest", unpacked)
	got := snapshot(t, unpacked)

	// type=local: everything but owners and security.capability, which its
	// receiver rewrites (it chowns every file to the client's user, and
	// chown clears file capabilities)
	local := filepath.Join(t.TempDir(), "local")
	d.mustBuildctl(t, b, e.dir(), "type=local,dest="+local)
	compareTrees(t, withoutOwners(snapshot(t, local)), withoutOwners(got), compareOptions{SkipRoot: true,
		IgnoreXat: func(_, name string) bool { return name == "security.capability" }})
	return got
}

// withoutOwners returns a copy of a snapshot with every owner set to 0:0.
func withoutOwners(m map[string]*node) map[string]*node {
	out := make(map[string]*node, len(m))
	for p, n := range m {
		c := *n
		c.UID, c.GID = 0, 0
		out[p] = &c
	}
	return out
}

// compareTarMeta checks owners and xattrs of every entry of BuildKit's
// type=tar export against the unpacked snapshot.
func compareTarMeta(t *testing.T, tarFile string, got map[string]*node) {
	t.Helper()
	f, err := os.Open(tarFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var diffs []string
	n := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading type=tar export: %v", err)
		}
		p := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		if p == "" {
			continue
		}
		n++
		g, ok := got[p]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%q: in type=tar, not unpacked", p))
			continue
		}
		if uint32(hdr.Uid) != g.UID || uint32(hdr.Gid) != g.GID {
			diffs = append(diffs, fmt.Sprintf("%q: owner: type=tar %d:%d, unpacked %d:%d", p, hdr.Uid, hdr.Gid, g.UID, g.GID))
		}
		if hdr.Typeflag == tar.TypeLink {
			continue // a hardlink's xattrs are its target's
		}
		want := map[string]string{}
		for k, v := range hdr.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				want[name] = v
			}
		}
		if fmt.Sprint(want) != fmt.Sprint(g.Xattrs) && !(len(want) == 0 && len(g.Xattrs) == 0) {
			diffs = append(diffs, fmt.Sprintf("%q: xattrs: type=tar %q, unpacked %q", p, want, g.Xattrs))
		}
	}
	if len(diffs) > 0 {
		if len(diffs) > 40 {
			diffs = append(diffs[:40], fmt.Sprintf("... and %d more", len(diffs)-40))
		}
		t.Errorf("owners/xattrs differ from type=tar (%d entries):\n%s", n, strings.Join(diffs, "\n"))
	}
}

// testReproducible: two --no-cache builds with SOURCE_DATE_EPOCH and
// rewrite-timestamp=true give one manifest digest.
func testReproducible(t *testing.T, d *bkDaemon, b *bases) {
	for _, ex := range []string{"hello", "overwrite"} {
		ctx := filepath.Join("..", "examples", "Dockerfiles", ex)
		var digests []string
		for i := range 2 {
			m := d.mustBuildctl(t, b, ctx,
				fmt.Sprintf("type=oci2,name=oci2-test/repro-%s:%d,rewrite-timestamp=true", ex, i),
				"--no-cache", "--opt", "build-arg:SOURCE_DATE_EPOCH=1700000000")
			digests = append(digests, digestOf(t, m))
		}
		if digests[0] != digests[1] {
			t.Errorf("%s: two --no-cache builds: %s and %s", ex, digests[0], digests[1])
		}
		// an mtime the build made (RUN, after the epoch) is clamped to it
		dest := filepath.Join(t.TempDir(), "u")
		mustRun(t, nil, bin(t, "oci2"), "--store", d.store, "unpack", "oci2-test/repro-"+ex+":0", dest)
		if fi, err := os.Stat(filepath.Join(dest, "etc")); err != nil || fi.ModTime().Unix() != 1700000000 {
			t.Errorf("%s: /etc mtime %v (%v), want 1700000000", ex, fi.ModTime().Unix(), err)
		}
	}
}

// testIncremental builds base + big/ (nbig MiB, its own layer) + app/ (20
// files of 256 KiB), changes one app file, and rebuilds (after restarting
// the daemon, with restart): the export reads only the rebuilt layer's
// files (the base's and big/'s come from the files cache) and writes only
// the new file's frames plus trees.
func testIncremental(t *testing.T, d *bkDaemon, b *bases, base string, nbig int, restart bool) {
	ctx := t.TempDir()
	df := fmt.Sprintf("FROM %s\nCOPY big/ /big/\nCOPY app/ /app/\n", base)
	if nbig == 0 {
		df = fmt.Sprintf("FROM %s\nCOPY app/ /app/\n", base)
	}
	name := "type=oci2,name=oci2-test/incremental-" + base
	if restart {
		// a build of its own, not cached by the plain incremental one
		df = strings.Replace(df, "\n", "\nCOPY restart.txt /\n", 1)
		os.WriteFile(filepath.Join(ctx, "restart.txt"), []byte("restart\n"), 0o644)
		name += "-restart"
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range nbig {
		writeRandom(t, filepath.Join(ctx, "big", fmt.Sprintf("f%02d", i)), 1<<20, uint64(1000+i))
	}
	const napp, appSize = 20, 256 << 10
	for i := range napp {
		writeRandom(t, filepath.Join(ctx, "app", fmt.Sprintf("f%02d", i)), appSize, uint64(i))
	}
	s1 := statsOf(t, d.mustBuildctl(t, b, ctx, name))[0]
	writeRandom(t, filepath.Join(ctx, "app", "f07"), appSize, 777)
	if restart {
		d.stop()
		d.start(t)
	}
	s2 := statsOf(t, d.mustBuildctl(t, b, ctx, name))[0]

	t.Logf("%s: cold export %.2fs (%d files, %d MiB, %d frames, %d MiB stored new, %d cached files); "+
		"after a one-file change %.2fs (%d cached files, %d MiB not read, %d new frames, %d KiB written): %.1f%% of cold",
		base, s1.Seconds, s1.Stats.Files, s1.Stats.LogicalBytes>>20, s1.Stats.Frames, s1.Stats.StoredNew>>20, s1.Cache.Hits,
		s2.Seconds, s2.Cache.Hits, s2.Cache.HitBytes>>20, s2.Stats.FramesNew, s2.Stats.StoredNew>>10,
		100*s2.Seconds/s1.Seconds)
	// Only the layer of COPY app/ is walked; the tree of the layers below
	// it comes from the first export (held in memory: after a restart the
	// chain is walked once again, and the files cache avoids the reads).
	if !restart && (s2.Tree.LayersCached != s2.Tree.Layers-1 || s2.Tree.Walked > napp+3) {
		t.Errorf("after a one-file change: tree %+v, want all layers but the top from the cache and %d entries walked",
			s2.Tree, napp+1)
	}
	// COPY app/ made a new snapshot: its files are new inodes and are read
	// again; everything below it comes from the cache.
	if s2.Cache.Hits < s2.Cache.Files-napp {
		t.Errorf("after a one-file change: %d of %d files from the cache, want all but the %d of app/",
			s2.Cache.Hits, s2.Cache.Files, napp)
	}
	// one file of 256 KiB: its frames and the frames of the trees on its
	// path; the data frames next to it are cut anew (frames hold up to
	// 1 MiB of chunks, SPEC.md §5.2) until boundaries resynchronize
	if s2.Stats.FramesNew > 8 || s2.Stats.StoredNew > appSize+2<<20 {
		t.Errorf("after a one-file change: %d new frames, %d bytes written; want only the changed file's and its trees'",
			s2.Stats.FramesNew, s2.Stats.StoredNew)
	}
}

// testMultiPlatform: --platform a,b gives one manifest per platform, in
// order, in one index; a COPY-only build needs no emulator.
func testMultiPlatform(t *testing.T, d *bkDaemon) {
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nARG TARGETPLATFORM\nCOPY hello.txt /hello.txt\n"), 0o644)
	os.WriteFile(filepath.Join(ctx, "hello.txt"), []byte("multi\n"), 0o644)
	m := d.mustBuildctl(t, nil, ctx, "type=oci2,name=oci2-test/multi", "--opt", "platform=linux/arm64,linux/amd64")
	idx := d.storedIndex(t, "docker.io/oci2-test/multi:latest")
	var got []string
	for _, md := range idx.Manifests {
		if md.Platform != nil {
			got = append(got, md.Platform.OS+"/"+md.Platform.Architecture)
		}
	}
	if !slices.Equal(got, []string{"linux/arm64", "linux/amd64"}) {
		t.Errorf("index platforms %q, want linux/arm64, linux/amd64", got)
	}
	if st := statsOf(t, m); len(st) != 2 {
		t.Errorf("oci2.stats has %d platforms, want 2", len(st))
	}
	dest := filepath.Join(t.TempDir(), "arm64")
	mustRun(t, nil, bin(t, "oci2"), "--store", d.store, "unpack", "--platform", "linux/arm64", "oci2-test/multi", dest)
	if b, err := os.ReadFile(filepath.Join(dest, "hello.txt")); err != nil || string(b) != "multi\n" {
		t.Errorf("arm64 image: hello.txt %q, %v", b, err)
	}
}

// testEmpty: FROM scratch with nothing added exports an empty tree.
func testEmpty(t *testing.T, d *bkDaemon) {
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	m := d.mustBuildctl(t, nil, ctx, "type=oci2,name=oci2-test/empty")
	if st := statsOf(t, m); st[0].Stats.Files != 0 {
		t.Errorf("empty image has %d files", st[0].Stats.Files)
	}
	dest := filepath.Join(t.TempDir(), "u")
	mustRun(t, nil, bin(t, "oci2"), "--store", d.store, "unpack", "oci2-test/empty", dest)
	if ents, err := os.ReadDir(dest); err != nil || len(ents) != 0 {
		t.Errorf("unpacked empty image: %d entries, %v", len(ents), err)
	}
}

// testExternalGC: `oci2 rm` + `oci2 gc` beside the running daemon delete
// the blobs the export stored (the store is warm: some of its new chunks
// went into a unit, SPEC.md §8.1). Exporting the same context again stores
// its units again, counts what it stores in oci2.stats as the first export
// did, and does not need the exporter's stale-index retry. The daemon keeps
// its index in the store's index files, which the gc rewrites: its
// long-lived index used to take the unit stored again for one the files
// name, so the export's check found its frames unlocatable and the retry,
// which reused what the first attempt stored, reported nothing new.
func testExternalGC(t *testing.T, d *bkDaemon) {
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nCOPY unique.txt /\n"), 0o644)
	// More new bytes than a unit holds (index.DefaultUnitSize): a write
	// that fills no unit stores its frames as blobs instead.
	writeRandom(t, filepath.Join(ctx, "unique.txt"), 9<<20, uint64(os.Getpid()))
	const name = "oci2-test/gc"
	// A warm store (SPEC.md §8.1), whatever ran before: an image the test
	// keeps named through its gc.
	s := newStore(t, d.store)
	warm := t.TempDir()
	os.WriteFile(filepath.Join(warm, "warm.txt"), []byte("a store that holds a chunk is warm\n"), 0o644)
	s.must("create", "--tag", name+"-warm", warm)
	defer s.must("rm", name+"-warm")
	unitsDir := filepath.Join(d.store, "oci2", "units") // named by their blob's digest
	export := func() (exportStats, []string) {
		t.Helper()
		blobs, units := dirNames(t, filepath.Join(d.store, "blobs", "sha256")), dirNames(t, unitsDir)
		m, r := d.buildctl(t, nil, ctx, "type=oci2,name="+name)
		if r.Err != nil {
			t.Fatalf("buildctl: %v\n%s", r.Err, clip(r.Stderr))
		}
		if strings.Contains(r.Stderr, "indexing it again") {
			t.Errorf("the export found the daemon's index stale after its own write:\n%s", clip(r.Stderr))
		}
		st := statsOf(t, m)[0]
		newUnits := newNames(dirNames(t, unitsDir), units)
		if want := storedNew(t, d, name, blobs, newUnits); st.Stats.StoredNew != want {
			t.Errorf("stored_new_bytes %d; the export stored %d (its new frame blobs and units %v)", st.Stats.StoredNew, want, newUnits)
		}
		return st, newUnits
	}
	first, units := export()
	if first.Stats.FramesNew < 2 || len(units) == 0 {
		t.Fatalf("first export: %+v, new units %v; the test needs new frames, their chunks in units", first.Stats, units)
	}
	s.must("rm", name)
	s.must("gc")
	if kept := newNames(units, newNames(units, dirNames(t, filepath.Join(d.store, "blobs", "sha256")))); len(kept) != 0 {
		t.Fatalf("gc kept units of the removed image: %v", kept)
	}
	again, units := export()
	if again.Stats.FramesNew != first.Stats.FramesNew || len(units) == 0 {
		t.Errorf("export after an external gc: %+v, new units %v; want %d new frames, in new units",
			again.Stats, units, first.Stats.FramesNew)
	}
	s.must("check", "--read-data")
}

// storedNew is what an export of name stored: the frames of its image
// stored as blobs that were not in blobs before, and units.
func storedNew(t *testing.T, d *bkDaemon, name string, blobs, units []string) int64 {
	t.Helper()
	ctx := context.Background()
	st, err := local.Open(d.store)
	if err != nil {
		t.Fatal(err)
	}
	img, err := reader.Open(ctx, st, d.storedIndex(t, "docker.io/"+name+":latest").Manifests[0])
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	add := func(d digest.Digest) {
		if info, err := st.Stat(ctx, d); err == nil {
			n += info.Size
		}
	}
	seen := map[string]bool{}
	for _, ps := range [][]reader.Pack{img.TreePacks, img.DataPacks} {
		for _, p := range ps {
			for _, f := range p.Index.Frames {
				h := f.Digest.Digest().Encoded()
				if !seen[h] && !slices.Contains(blobs, h) && !slices.Contains(units, h) {
					add(f.Digest.Digest())
				}
				seen[h] = true
			}
		}
	}
	for _, u := range units {
		add(digest.NewDigestFromEncoded(digest.SHA256, u))
	}
	return n
}

// newNames returns the names in now that are not in before.
func newNames(now, before []string) []string {
	var out []string
	for _, n := range now {
		if !slices.Contains(before, n) {
			out = append(out, n)
		}
	}
	return out
}

// dirNames lists dir (nothing when it does not exist).
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// testBadAttrs: invalid attributes fail before the build with a message
// naming the problem (and the valid keys for an unknown one).
func testBadAttrs(t *testing.T, d *bkDaemon) {
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	for _, tc := range []struct{ output, want string }{
		{"type=oci2,name=x,nmae=y", `unknown attribute "nmae" (valid: buildinfo, buildinfo-attrs, name, push,`},
		{"type=oci2,name=x,compression=zstd", `unknown attribute "compression"`},
		{"type=oci2,name=x,rewrite-timestamp=maybe", `rewrite-timestamp="maybe": not a bool`},
		{"type=oci2,push=true", "push=true needs name="},
		{"type=oci2,name=oci2/Upper", `name="oci2/Upper"`},
	} {
		_, r := d.buildctl(t, nil, ctx, tc.output)
		if r.Err == nil || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("--output %s: err %v, want an error containing %q:\n%s", tc.output, r.Err, tc.want, clip(r.Stderr))
		}
	}
}
