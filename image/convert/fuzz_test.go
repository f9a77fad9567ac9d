package convert

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/writer"
)

// FuzzLayers applies two arbitrary tar streams as layers: it must never
// panic, and whatever it accepts is a tree of valid names with spooled
// contents of the declared sizes.
func FuzzLayers(f *testing.F) {
	ls := baseLayers()
	f.Add(tarBytes(f, ls[0].ents), tarBytes(f, ls[1].ents))
	f.Add(tarBytes(f, []ent{symlink("a", "/etc")}), tarBytes(f, []ent{reg("a/x", "x", 0o644), hardlink("b", "../a")}))
	parent := f.TempDir()
	f.Fuzz(func(t *testing.T, l1, l2 []byte) {
		sp, err := newSpool(parent)
		if err != nil {
			t.Fatal(err)
		}
		defer sp.Close()
		tr := newTree(sp, reader.Limits{MaxEntries: 1000, MaxDepth: 64, MaxBytes: 1 << 20}, nil)
		for i, b := range [][]byte{l1, l2} {
			tr.layer = i + 1
			if err := readLayerTar(context.Background(), bufio.NewReader(bytes.NewReader(b)), sha256.New(), tr); err != nil {
				return
			}
		}
		var check func(n *writer.Node, root bool)
		check = func(n *writer.Node, root bool) {
			if !root && (n.Name == "" || n.Name == "." || n.Name == ".." || strings.ContainsAny(n.Name, "/\x00")) {
				t.Fatalf("invalid name %q", n.Name)
			}
			if n.Content != nil {
				rc, err := n.Content.Open()
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				buf.ReadFrom(rc)
				rc.Close()
				if uint64(buf.Len()) != n.Size {
					t.Fatalf("%q: %d bytes spooled, size %d", n.Name, buf.Len(), n.Size)
				}
			}
			for _, k := range n.Children {
				check(k, false)
			}
		}
		check(tr.build(), true)
	})
}
