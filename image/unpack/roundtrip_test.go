package unpack_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/unpack"
	"github.com/oci2/oci2/image/unpack/unpacktest"
	"github.com/oci2/oci2/image/writer"
	wt "github.com/oci2/oci2/image/writer/writertest"
	"github.com/oci2/oci2/store/memstore"
)

// capNetRaw is the raw security.capability value `setcap cap_net_raw+ep`
// writes (VFS_CAP_REVISION_2, effective, permitted bit 13).
const capNetRaw = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// roundTripTree is a source tree with every entry type and the metadata
// corner cases; privileged adds devices, foreign owners, trusted.* and
// security.* xattrs.
func roundTripTree(privileged bool) wt.Dir {
	ns := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	deep := wt.Dir{"bottom": wt.File{Content: "deep"}}
	for i := 0; i < 200; i++ {
		deep = wt.Dir{"d": deep}
	}
	bin := wt.Dir{
		"su":    wt.File{Meta: wt.Meta{Mode: 0o755 | os.ModeSetuid}, Content: "#!/bin/sh\n"},
		"sg":    wt.File{Meta: wt.Meta{Mode: 0o711 | os.ModeSetgid}, Content: "x"},
		"ping":  wt.File{Meta: wt.Meta{Mode: 0o755, Xattrs: map[string]string{"user.empty": "", "user.bin": "\x00\xff"}}, Content: strings.Repeat("elf", 5000)},
		"ping2": wt.Hardlink{Target: "bin/ping"},
	}
	root := wt.Dir{
		"bin": bin,
		"etc": wt.Dir{
			"empty":   wt.File{},
			"passwd":  wt.File{Content: "root:x:0:0:root:/root:/bin/sh\n", Meta: wt.Meta{Mtime: ns}},
			"passwd-": wt.Hardlink{Target: "etc/passwd"},
		},
		"files": wt.Dir{
			"sparse": wt.File{Content: strings.Repeat("head", 30000), Size: 4 << 20, At: map[int64]string{3 << 20: "middle", 4<<20 - 5: "tail"}},
			"hole":   wt.File{Size: 1 << 20},
			"big":    wt.File{Content: strings.Repeat("0123456789abcdef", 100000)},
		},
		"links": wt.Dir{
			"abs":      wt.Symlink{Target: "/etc/passwd", Mtime: ns},
			"rel":      wt.Symlink{Target: "../etc/passwd"},
			"dangling": wt.Symlink{Target: "no/such/file"},
			"hl":       wt.Hardlink{Target: "etc/passwd"},
		},
		"modes": wt.Dir{
			"sticky":  wt.Tree{Meta: wt.Meta{Mode: 0o777 | os.ModeSticky}},
			"private": wt.Tree{Meta: wt.Meta{Mode: 0o700}, Entries: wt.Dir{"f": wt.File{Meta: wt.Meta{Mode: 0o600}}}},
			"locked":  wt.Dir{"inside": wt.File{Content: "secret"}, "sub": wt.Dir{"f": wt.File{}}}, // chmod 0 later
			"xattrd":  wt.Tree{Meta: wt.Meta{Xattrs: map[string]string{"user.dir": "v"}}},
		},
		"names": wt.Dir{
			"with space":             wt.File{Content: "1"},
			"new\nline":              wt.File{Content: "2"},
			"bad\xff\xfeutf8":        wt.File{Content: "3"},
			strings.Repeat("n", 255): wt.File{Content: "4"},
		},
		"fifo": wt.Fifo{Meta: wt.Meta{Mode: 0o620}},
		"deep": deep,
	}
	if privileged {
		root["dev"] = wt.Dir{
			"null": wt.Device{Meta: wt.Meta{Mode: 0o666}, Major: 1, Minor: 3},
			"sda":  wt.Device{Meta: wt.Meta{Mode: 0o660}, Block: true, Major: 8, Minor: 0},
		}
		root["owned"] = wt.File{Meta: wt.Meta{Chown: true, UID: 4000000000, GID: 4000000001, Mode: 0o640}, Content: "big ids"}
		root["cap"] = wt.File{Meta: wt.Meta{Mode: 0o755, Xattrs: map[string]string{
			"security.capability": capNetRaw, "trusted.md5": "abc", "user.x": "y"}}, Content: "ping"}
	}
	return root
}

// writeImage writes dir as an image into a new memstore and opens it.
func writeImage(t testing.TB, dir string) (*reader.Image, *reader.ChunkReader) {
	t.Helper()
	ctx := t.Context()
	node, err := writer.FromDir(ctx, dir, writer.DirOptions{Warn: func(p string, err error) { t.Logf("FromDir: %s: %v", p, err) }})
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New()
	res, err := writer.Write(ctx, st, node, writer.Options{Config: ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := reader.Open(ctx, st, res.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	return img, reader.NewChunkReader(img, reader.LocalFrames(st))
}

func TestRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := wt.CreateTree(src, wt.Tree{Meta: wt.Meta{Mode: 0o751}, Entries: roundTripTree(asRoot(t))}); err != nil {
		t.Fatal(err)
	}
	// A 0000 directory with content (chmod keeps the parent's mtime).
	if err := os.Chmod(filepath.Join(src, "modes", "locked"), 0); err != nil {
		t.Fatal(err)
	}
	want, err := unpacktest.Take(src)
	if err != nil {
		t.Fatal(err)
	}
	if asRoot(t) {
		if e := want["cap"]; e == nil || e.Xattrs["security.capability"] != capNetRaw || want["dev/sda"].Type != "block" {
			t.Fatalf("source tree lacks the privileged entries: %+v", e)
		}
	}
	if want["modes/locked"].Mode != 0 || want["bin/ping2"].Link != "bin/ping" || len(want) < 220 {
		t.Fatalf("source tree is not what the test means: %+v", want["modes/locked"])
	}
	img, cr := writeImage(t, src)
	for _, workers := range []int{1, 4} {
		sb := newSandbox(t)
		st, err := unpack.Unpack(t.Context(), img, cr, sb.dest, unpack.Options{Workers: workers,
			Warn: func(p string, err error) { t.Errorf("warning %s: %v", p, err) }})
		if err != nil {
			t.Fatal(err)
		}
		got, err := unpacktest.Take(sb.dest)
		if err != nil {
			t.Fatal(err)
		}
		if d := unpacktest.Diff(want, got, unpacktest.Options{Blocks: true}); len(d) > 0 {
			t.Errorf("%d workers: unpacked tree differs from the source:\n%s", workers, strings.Join(d, "\n"))
		}
		if st.Entries != int64(len(want)) {
			t.Errorf("stats %+v, source has %d entries", st, len(want))
		}
		if got["files/sparse"].Blocks*512 >= 1<<20 || got["files/hole"].Blocks != 0 {
			t.Errorf("holes not kept: sparse %d blocks, hole %d", got["files/sparse"].Blocks, got["files/hole"].Blocks)
		}
		sb.check(t)
	}

	// The comparison sees a one-nanosecond difference.
	sb := newSandbox(t)
	if _, err := unpack.Unpack(t.Context(), img, cr, sb.dest, unpack.Options{}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(sb.dest, "etc", "passwd")
	ts := time.Date(2021, 3, 4, 5, 6, 7, 123456788, time.UTC)
	if err := os.Chtimes(p, ts, ts); err != nil {
		t.Fatal(err)
	}
	got, _ := unpacktest.Take(sb.dest)
	d := unpacktest.Diff(want, got, unpacktest.Options{})
	if len(d) != 3 || !strings.Contains(d[0], `"/etc/passwd": mtime`) { // the group of three links
		t.Errorf("diff after a 1 ns change: %q", d)
	}
}
