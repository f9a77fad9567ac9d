package writer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store/local"
)

var testConfig = ocispec.Image{Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"}}

// goldenTree is a small fixed tree built in memory (machine independent).
func goldenTree() *writer.Node {
	big := pseudo(7, 600<<10) // several chunks and frames
	return dir("", 0o755,
		file("a", 0o644, []byte("foo\n")),
		dir("bin", 0o755,
			file("tool", 0o4755, big),
			&writer.Node{Entry: format.Entry{Name: "sh", Type: format.TypeSymlink, Mode: 0o777,
				MtimeSec: 1600000000, Target: "tool"}},
		),
		dir("empty", 0o700),
		file("zero", 0o600, nil),
		&writer.Node{Entry: format.Entry{Name: "fifo", Type: format.TypeFifo, Mode: 0o600,
			MtimeSec: -5, Xattrs: []format.Xattr{{Name: "user.b", Value: nil}, {Name: "user.a", Value: []byte{0, 1}}}}},
		&writer.Node{Entry: format.Entry{Name: "null", Type: format.TypeChar, Mode: 0o666,
			DevMajor: 1, DevMinor: 3}},
	)
}

// goldenManifest pins the manifest of goldenTree: it changes only when the
// format (or the pinned encoder) changes. It was taken from a run and
// checked to be the same in a memory store and in two local stores in two
// temporary directories (the test below does that every time), so it
// depends neither on the machine, the paths nor the store.
const goldenManifest = "sha256:3517ecb8ede6b82d6e87a394231ba486213bf1bd17a61a95f9ddc8405f500ea3"

func TestGoldenManifest(t *testing.T) {
	e := newEnv(t)
	res := e.write(goldenTree(), writer.Options{Config: testConfig})
	if got := res.Manifest.Digest.String(); got != goldenManifest {
		t.Errorf("manifest digest = %s, want %s", got, goldenManifest)
	}
	if res.Manifest.Platform == nil || res.Manifest.Platform.Architecture != "amd64" || res.Manifest.Platform.OS != "linux" {
		t.Errorf("platform = %+v", res.Manifest.Platform)
	}
	// Two local stores in two temporary directories, one worker and many:
	// the same bytes.
	for i, workers := range []int{1, 4} {
		st, err := local.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		res2, err := writer.Write(context.Background(), st, goldenTree(), writer.Options{Config: testConfig, Workers: workers})
		if err != nil {
			t.Fatalf("local store %d: %v", i, err)
		}
		if res2.Manifest.Digest != res.Manifest.Digest {
			t.Errorf("local store %d: %s, memory store %s", i, res2.Manifest.Digest, res.Manifest.Digest)
		}
	}
}

func TestManifestLayout(t *testing.T) {
	e := newEnv(t)
	res := e.write(goldenTree(), writer.Options{Config: testConfig, Annotations: map[string]string{"x": "y"}})
	b, err := e.st.ReadBlob(e.ctx, res.Manifest.Digest, 0)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.MediaType != ocispec.MediaTypeImageManifest || m.SchemaVersion != 2 {
		t.Errorf("manifest header %q %d", m.MediaType, m.SchemaVersion)
	}
	want := map[string]string{format.AnnotationFormat: "1", format.AnnotationRoot: res.Root.String(), "x": "y"}
	for k, v := range want {
		if m.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, m.Annotations[k], v)
		}
	}
	if len(m.Layers) < 4 || len(m.Layers)%2 != 0 {
		t.Fatalf("%d layers, want pairs of tree and data packs", len(m.Layers))
	}
	sawData := false
	for i := 0; i < len(m.Layers); i += 2 {
		pi, p := m.Layers[i], m.Layers[i+1]
		if pi.MediaType != format.MediaTypePackIndex {
			t.Errorf("layer %d: %s, want pack index", i, pi.MediaType)
		}
		switch p.MediaType {
		case format.MediaTypeTreePack:
			if sawData {
				t.Errorf("layer %d: tree pack after data packs", i+1)
			}
		case format.MediaTypeDataPack:
			sawData = true
		default:
			t.Errorf("layer %d: media type %s", i+1, p.MediaType)
		}
		if p.Annotations[format.AnnotationPackIndex] != pi.Digest.String() {
			t.Errorf("layer %d: pack index annotation %q, want %s", i+1, p.Annotations[format.AnnotationPackIndex], pi.Digest)
		}
		checkPack(t, e, pi, p)
	}
	if !sawData {
		t.Error("no data pack")
	}
	cb, err := e.st.ReadBlob(e.ctx, m.Config.Digest, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cb, []byte(`"rootfs":{"type":"layers","diff_ids":[]}`)) {
		t.Errorf("config rootfs: %s", cb)
	}
}

// checkPack rebuilds a pack from its frames and checks size and digest.
func checkPack(t *testing.T, e *env, pi, p ocispec.Descriptor) {
	t.Helper()
	b, err := e.st.ReadBlob(e.ctx, pi.Digest, 0)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := format.DecodePackIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	var pack []byte
	for _, f := range idx.Frames {
		fb, err := e.st.ReadBlob(e.ctx, f.Digest.Digest(), 0)
		if err != nil {
			t.Fatalf("frame %s: %v", f.Digest, err)
		}
		pack = append(pack, fb...)
	}
	if int64(len(pack)) != p.Size || p.Digest.Algorithm().FromBytes(pack) != p.Digest {
		t.Errorf("pack %s (size %d) does not match its frames (%d bytes)", p.Digest, p.Size, len(pack))
	}
}

func TestRoundTripEntries(t *testing.T) {
	e := newEnv(t)
	res := e.write(goldenTree(), writer.Options{Config: testConfig})
	got := e.entries(res.Root)
	if en := got[""]; en.Name != "rootfs" || en.Type != format.TypeDir || en.Mode != 0o755 {
		t.Errorf("root wrapper entry %+v", en)
	}
	if en := got["bin/tool"]; en.Mode != 0o4755 || !bytes.Equal(e.fileBytes(en), pseudo(7, 600<<10)) {
		t.Errorf("bin/tool: mode %o, content differs", en.Mode)
	}
	if en := got["bin/sh"]; en.Type != format.TypeSymlink || en.Target != "tool" {
		t.Errorf("bin/sh %+v", en)
	}
	if en := got["fifo"]; en.MtimeSec != -5 || len(en.Xattrs) != 2 || en.Xattrs[0].Name != "user.a" {
		t.Errorf("fifo %+v", en)
	}
	if en := got["null"]; en.DevMajor != 1 || en.DevMinor != 3 {
		t.Errorf("null %+v", en)
	}
	if en := got["zero"]; en.Size != 0 || len(en.Extents) != 0 {
		t.Errorf("zero %+v", en)
	}
	if len(got) != 9 {
		t.Errorf("%d entries: %v", len(got), keys(got))
	}
}

func keys(m map[string]format.Entry) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	return s
}

func TestSourceDateEpoch(t *testing.T) {
	e := newEnv(t)
	epoch := time.Unix(1600000000, 0)
	root := dir("", 0o755,
		&writer.Node{Entry: format.Entry{Name: "new", Type: format.TypeFifo, MtimeSec: 1700000000, MtimeNsec: 5}},
		&writer.Node{Entry: format.Entry{Name: "same", Type: format.TypeFifo, MtimeSec: 1600000000, MtimeNsec: 1}},
		&writer.Node{Entry: format.Entry{Name: "old", Type: format.TypeFifo, MtimeSec: 1500000000, MtimeNsec: 7}},
	)
	root.MtimeSec = 1800000000
	created := time.Unix(1900000000, 0)
	cfg := testConfig
	cfg.Created = &created
	res := e.write(root, writer.Options{Config: cfg, SourceDateEpoch: &epoch})
	got := e.entries(res.Root)
	for p, want := range map[string][2]int64{"": {1600000000, 0}, "new": {1600000000, 0},
		"same": {1600000000, 0}, "old": {1500000000, 7}} {
		if en := got[p]; en.MtimeSec != want[0] || int64(en.MtimeNsec) != want[1] {
			t.Errorf("%q: mtime %d.%09d, want %d.%09d", p, en.MtimeSec, en.MtimeNsec, want[0], want[1])
		}
	}
	var m ocispec.Manifest
	b, _ := e.st.ReadBlob(e.ctx, res.Manifest.Digest, 0)
	json.Unmarshal(b, &m)
	var c ocispec.Image
	b, _ = e.st.ReadBlob(e.ctx, m.Config.Digest, 0)
	json.Unmarshal(b, &c)
	if c.Created == nil || !c.Created.Equal(epoch) {
		t.Errorf("config created %v, want %v", c.Created, epoch)
	}
	if root.Children[0].MtimeSec != 1700000000 {
		t.Error("Write modified the caller's nodes")
	}
}

func TestHardlinkGroups(t *testing.T) {
	e := newEnv(t)
	link := func(name string, ino uint64, content string) *writer.Node {
		n := file(name, 0o640, []byte(content))
		n.Inode = ino
		return n
	}
	root := dir("", 0o755,
		dir("z", 0o755, link("late", 1, "one")),
		link("b", 1, "one"),
		dir("a", 0o755, link("c", 2, "two"), link("d", 2, "two")),
	)
	res := e.write(root, writer.Options{Config: testConfig})
	got := e.entries(res.Root)
	want := map[string]format.Entry{
		"a/c":    {Name: "c", Type: format.TypeReg},
		"a/d":    {Name: "d", Type: format.TypeHardlink, Target: "a/c"},
		"b":      {Name: "b", Type: format.TypeReg},
		"z/late": {Name: "late", Type: format.TypeHardlink, Target: "b"},
	}
	for p, w := range want {
		g := got[p]
		if g.Type != w.Type || g.Target != w.Target {
			t.Errorf("%s: type %d target %q, want %d %q", p, g.Type, g.Target, w.Type, w.Target)
		}
		if g.Type == format.TypeHardlink && (g.Mode != 0 || g.MtimeSec != 0 || g.Size != 0) {
			t.Errorf("%s: hardlink carries metadata %+v", p, g)
		}
	}
	if res.Stats.Files != 2 || res.Stats.LogicalBytes != 6 {
		t.Errorf("stats %+v", res.Stats)
	}
}

func TestSparseExtents(t *testing.T) {
	e := newEnv(t)
	content := make([]byte, 1<<20)
	copy(content, "head")
	copy(content[512<<10:], pseudo(1, 5000))
	res := e.write(dir("", 0o755, file("sparse", 0o644, content)), writer.Options{Config: testConfig})
	en := e.entries(res.Root)["sparse"]
	want := []struct {
		zero bool
		n    uint64
	}{{false, 4096}, {true, 520192}, {false, 8192}, {true, 516096}}
	if len(en.Extents) != len(want) {
		t.Fatalf("extents %+v", en.Extents)
	}
	for i, w := range want {
		if x := en.Extents[i]; x.Zero != w.zero || x.Length != w.n {
			t.Errorf("extent %d: zero=%v %d bytes, want zero=%v %d", i, x.Zero, x.Length, w.zero, w.n)
		}
	}
	if !bytes.Equal(e.fileBytes(en), content) {
		t.Error("content differs")
	}
}

func TestInvalidTrees(t *testing.T) {
	for name, root := range map[string]*writer.Node{
		"not a dir":  file("", 0o644, nil),
		"slash":      dir("", 0o755, file("a/b", 0o644, nil)),
		"dot":        dir("", 0o755, file("..", 0o644, nil)),
		"duplicate":  dir("", 0o755, file("a", 0o644, nil), file("a", 0o644, nil)),
		"no content": dir("", 0o755, &writer.Node{Entry: format.Entry{Name: "f", Type: format.TypeReg, Size: 3}}),
		"bad link": dir("", 0o755, &writer.Node{Entry: format.Entry{Name: "a", Type: format.TypeHardlink, Target: "b"}},
			file("b", 0o644, nil)),
		"overlay xattr": dir("", 0o755, &writer.Node{Entry: format.Entry{Name: "a", Type: format.TypeFifo,
			Xattrs: []format.Xattr{{Name: "trusted.overlay.opaque", Value: []byte("y")}}}}),
		"setuid owner (uid_t)-1": dir("", 0o755, &writer.Node{Entry: format.Entry{Name: "su", Type: format.TypeFifo,
			Mode: 0o4755, UID: format.NoOwner}}),
	} {
		if _, err := writer.Write(context.Background(), newEnv(t).st, root, writer.Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestProgress(t *testing.T) {
	e := newEnv(t)
	var last writer.Progress
	phases := map[string]bool{}
	e.write(goldenTree(), writer.Options{Config: testConfig, Progress: func(p writer.Progress) {
		last = p
		phases[p.Phase] = true
	}})
	for _, p := range []string{"walk", "data", "trees", "commit"} {
		if !phases[p] {
			t.Errorf("phase %s not reported", p)
		}
	}
	if last.BytesRead != last.BytesTotal || last.BytesTotal != 600<<10+4 || last.FramesNew == 0 {
		t.Errorf("last progress %+v", last)
	}
}
