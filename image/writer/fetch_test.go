package writer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oci2/oci2/image/writer"
)

// knownTree returns a tree of several multi-frame files and the same tree
// with every file's extents set from an earlier write, content kept.
func knownTree(t *testing.T) (plain, known *writer.Node) {
	var datas [][]byte
	for i := range 4 {
		datas = append(datas, pseudo(byte(20+i), 3<<20+i*12345))
	}
	mk := func() *writer.Node {
		root := dir("", 0o755)
		for i, d := range datas {
			root.Children = append(root.Children, file(string(rune('a'+i)), 0o644, d))
		}
		return root
	}
	plain = mk()
	src := newEnv(t)
	ents := src.entries(src.write(mk(), writer.Options{Config: testConfig}).Root)
	known = mk()
	for _, n := range known.Children {
		n.Extents = ents[n.Name].Extents
	}
	return plain, known
}

func TestKnownExtentsRefetchedMidFile(t *testing.T) {
	// Frames close in the middle of files while the Packer's in-flight
	// limit holds the consumer back: chunks of a file are fetched before
	// the file's later chunks were added. Every chunk must still be found
	// in its file (the files cache after an external gc).
	plain, known := knownTree(t)
	want := newEnv(t).write(plain, writer.Options{Config: testConfig})
	for _, workers := range []int{1, 2, 4} {
		res := newEnv(t).write(known, writer.Options{Config: testConfig, Workers: workers})
		if res.Manifest.Digest != want.Manifest.Digest {
			t.Errorf("workers %d: %s, want %s", workers, res.Manifest.Digest, want.Manifest.Digest)
		}
		if res.Stats.FramesNew != want.Stats.FramesNew {
			t.Errorf("workers %d: %d new frames, want %d", workers, res.Stats.FramesNew, want.Stats.FramesNew)
		}
	}
}

func TestKnownExtentsFromDirRefetch(t *testing.T) {
	// The same through FromDir (files read at their offsets), and a file
	// whose bytes no longer match its extents is refused, never stored.
	d := t.TempDir()
	a, b := pseudo(31, 2<<20), pseudo(32, 1<<20)
	for name, data := range map[string][]byte{"a": a, "b": b} {
		if err := os.WriteFile(filepath.Join(d, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := newEnv(t)
	ents := src.entries(src.write(mustFromDir(t, d), writer.Options{Config: testConfig}).Root)
	withExtents := func() *writer.Node {
		root := mustFromDir(t, d)
		for _, n := range root.Children {
			n.Extents = ents[n.Name].Extents
		}
		return root
	}
	want := newEnv(t).write(mustFromDir(t, d), writer.Options{Config: testConfig})
	if res := newEnv(t).write(withExtents(), writer.Options{Config: testConfig, Workers: 1}); res.Manifest.Digest != want.Manifest.Digest {
		t.Errorf("known extents from files: %s, want %s", res.Manifest.Digest, want.Manifest.Digest)
	}

	// Same size, other bytes in the middle: the stale extents are caught by
	// the chunk IDs.
	bad := append([]byte(nil), b...)
	bad[len(bad)/2] ^= 1
	if err := os.WriteFile(filepath.Join(d, "b"), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := writer.Write(context.Background(), newEnv(t).st, withExtents(), writer.Options{Config: testConfig})
	if err == nil || !strings.Contains(err.Error(), "changed") || !strings.Contains(err.Error(), "/b") {
		t.Errorf("stale extents: err = %v, want the file named as changed", err)
	}
}
