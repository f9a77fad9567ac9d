package unpack_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	rt "github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/image/unpack"
	"github.com/oci2/oci2/internal/testenv"
)

// MapIDs shifts every owner, symlinks and directories included (a
// user-namespace-remapped BuildKit's snapshot of a base).
func TestUnpackMapIDs(t *testing.T) {
	testenv.RequireRoot(t, "chown to mapped owners needs root")
	f := rt.File("f", 0o644, []byte("x"))
	f.UID, f.GID = 1234, 5678
	root := rt.Dir("", 0o755, rt.Dir("d", 0o755, f), rt.Symlink("l", "d/f"))
	img, cr := image(t, root)
	dest := filepath.Join(t.TempDir(), "out")
	_, err := unpack.Unpack(t.Context(), img, cr, dest, unpack.Options{MapIDs: func(uid, gid uint32) (uint32, uint32, error) {
		return uid + 200000, gid + 200000, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string][2]uint32{".": {200000, 200000}, "d": {200000, 200000},
		"d/f": {201234, 205678}, "l": {200000, 200000}} {
		fi, err := os.Lstat(filepath.Join(dest, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != want[0] || st.Gid != want[1] {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, want[0], want[1])
		}
	}
}
