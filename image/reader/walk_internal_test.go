package reader

import (
	"errors"
	"strings"
	"testing"

	"github.com/oci2/oci2/format"
)

// TestWalkCycle feeds the walker a tree that contains itself, which Merkle
// digests make impossible to build: the guard must still stop it.
func TestWalkCycle(t *testing.T) {
	loop := format.Sum([]byte("loop"))
	wrapper := format.Sum([]byte("wrapper"))
	w := newWalker(t.Context(), nil, Limits{}, func(string, *format.Entry) error { return nil }, nil)
	w.trees[wrapper] = &format.Tree{Entries: []format.Entry{{Name: "rootfs", Type: format.TypeDir, Tree: loop}}}
	w.trees[loop] = &format.Tree{Entries: []format.Entry{{Name: "again", Type: format.TypeDir, Tree: loop}}}
	err := w.run(wrapper)
	if !errors.Is(err, ErrInvalidImage) || !strings.Contains(err.Error(), `"/again": tree `+loop.String()+" contains itself") {
		t.Errorf("walking a cycle: %v", err)
	}
}
