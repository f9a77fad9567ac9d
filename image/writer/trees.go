package writer

import (
	"fmt"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/format/pack"
)

// buildTrees encodes every directory bottom-up (SPEC.md §4.3) and returns
// the root wrapper's encoding and digest.
func buildTrees(p *plan) ([]byte, format.ChunkID, error) {
	// In pre-order every directory comes after its ancestors, so walking it
	// backwards encodes children before their parents.
	for i := len(p.dirs) - 1; i >= 0; i-- {
		d := p.dirs[i]
		t := format.Tree{Entries: make([]format.Entry, len(d.kids))}
		for k, c := range d.kids {
			t.Entries[k] = c.e
		}
		enc, err := t.Encode()
		if err != nil {
			return nil, format.ChunkID{}, fmt.Errorf("directory %q: %w", d.e.Name, err)
		}
		d.enc = enc
		d.e.Tree = format.Sum(enc)
	}
	wrapper := format.Tree{Entries: []format.Entry{p.root.e}}
	enc, err := wrapper.Encode()
	if err != nil {
		return nil, format.ChunkID{}, fmt.Errorf("root directory: %w", err)
	}
	return enc, format.Sum(enc), nil
}

// addTrees feeds the tree stream: the root wrapper, then every directory in
// canonical pre-order, each distinct tree once.
func addTrees(pk *pack.Packer, p *plan, wrapper []byte, wrapperID format.ChunkID) error {
	seen := make(map[format.ChunkID]bool, len(p.dirs)+1)
	add := func(id format.ChunkID, enc []byte) error {
		if seen[id] {
			return nil
		}
		seen[id] = true
		return pk.Add(pack.Chunk{ID: id, Size: uint32(len(enc)), Data: enc})
	}
	if err := add(wrapperID, wrapper); err != nil {
		return err
	}
	for _, d := range p.dirs {
		if err := add(d.e.Tree, d.enc); err != nil {
			return err
		}
	}
	return nil
}
