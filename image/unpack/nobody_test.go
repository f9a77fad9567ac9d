package unpack_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/oci2/oci2/image/unpack"
	"github.com/oci2/oci2/image/unpack/unpacktest"
	"github.com/oci2/oci2/internal/testenv"
)

const childEnv = "OCI2_UNPACK_TEST_NOBODY_DEST"

// TestUnpackAsNobody runs an unpack of richTree as uid/gid 65534 (a real
// unprivileged process: the test binary re-executed) and checks what it
// could and could not do.
func TestUnpackAsNobody(t *testing.T) {
	testenv.RequireRoot(t, "switching to nobody")
	top, err := os.MkdirTemp("", "oci2-unpack-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chmod(top, 0o777); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(top, "unpack.test")
	if err := copyFile(exe, os.Args[0]); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(top, "dest")
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestUnprivilegedChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+dest)
	cmd.Dir = top
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, s := range []string{"/dev/null: device node 1:3 skipped", `xattr "security.capability" skipped`,
		`xattr "trusted.md5" skipped`, "owner 4000000000:4000000001 not set"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("child output does not mention %q:\n%s", s, out)
		}
	}
	got, err := unpacktest.Take(dest)
	if err != nil {
		t.Fatal(err)
	}
	want := unprivilegedWant(richTree())
	if d := unpacktest.Diff(want, got, unpacktest.Options{IgnoreOwners: true}); len(d) > 0 {
		t.Errorf("unpacked tree differs:\n%s", strings.Join(d, "\n"))
	}
	for p, e := range got {
		if e.UID != 65534 || e.GID != 65534 {
			t.Errorf("%q owned by %d:%d", p, e.UID, e.GID)
		}
	}
}

// TestUnprivilegedChild is the unprivileged half of TestUnpackAsNobody.
func TestUnprivilegedChild(t *testing.T) {
	dest := os.Getenv(childEnv)
	if dest == "" {
		t.Skip("run by TestUnpackAsNobody")
	}
	img, cr := image(t, richTree())
	_, err := unpack.Unpack(t.Context(), img, cr, dest, unpack.Options{
		Warn: func(p string, err error) { t.Logf("warning %s: %v", p, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
