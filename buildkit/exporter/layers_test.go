package exporter

import (
	"testing"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
)

func smallTree(files int) *writer.Node {
	root := &writer.Node{Entry: format.Entry{Type: format.TypeDir, Mode: 0o755}}
	for i := range files {
		root.Children = append(root.Children, &writer.Node{Entry: format.Entry{
			Name: string(rune('a' + i)), Type: format.TypeReg, Mode: 0o644, Size: 1}})
	}
	return root
}

// TestTreeCache: trees go in and out as copies (an export patches its copy
// in place), and the least recently used go first past the bound.
func TestTreeCache(t *testing.T) {
	c := NewTreeCache(10)
	orig := smallTree(3) // 4 entries
	c.put("a", orig)
	orig.Children[0].Name = "changed after put"
	got := c.get("a")
	if got == nil || got.Children[0].Name != "a" {
		t.Fatalf("cached tree changed with the caller's: %+v", got)
	}
	got.Children = got.Children[:1]
	got.Mode = 0o700
	if again := c.get("a"); len(again.Children) != 3 || again.Mode != 0o755 {
		t.Fatalf("cached tree changed with a copy: %d children, mode %o", len(again.Children), again.Mode)
	}
	c.put("b", smallTree(3)) // 8 entries in all
	c.get("a")               // a is now the most recently used
	c.put("c", smallTree(1)) // 10
	c.put("d", smallTree(1)) // 12 > 10: b goes
	if c.get("b") != nil || c.get("a") == nil || c.get("c") == nil || c.get("d") == nil {
		t.Errorf("eviction: want b dropped, a, c, d kept")
	}
	c.put("huge", smallTree(20)) // larger than the bound: not kept
	if c.get("huge") != nil {
		t.Error("a tree larger than the whole cache was kept")
	}
	if c.get("nothing") != nil {
		t.Error("unknown chain found")
	}
}
