package format

// Encode validates t (SPEC.md §4.2) and returns its canonical encoding.
func (t *Tree) Encode() ([]byte, error) { panic("TODO(H1)") }

// DecodeTree decodes and validates a tree object; any non-canonical encoding
// is rejected.
func DecodeTree(b []byte) (*Tree, error) { panic("TODO(H1)") }

// Encode validates p (SPEC.md §5.3) and returns its canonical encoding.
func (p *PackIndex) Encode() ([]byte, error) { panic("TODO(H1)") }

// DecodePackIndex decodes and validates a pack index.
func DecodePackIndex(b []byte) (*PackIndex, error) { panic("TODO(H1)") }
