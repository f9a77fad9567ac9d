//go:build linux

package regfiletest

import (
	"testing"

	"golang.org/x/sys/unix"
)

// WatchOpens starts watching path (not following a final symlink) for
// opens; the returned function fails t if any happened since.
func WatchOpens(t testing.TB, path string) (check func()) {
	t.Helper()
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(in) })
	if _, err := unix.InotifyAddWatch(in, path, unix.IN_OPEN|unix.IN_DONT_FOLLOW); err != nil {
		t.Fatalf("watching %s: %v", path, err)
	}
	return func() {
		t.Helper()
		buf := make([]byte, 4096)
		if n, err := unix.Read(in, buf); n > 0 || err != unix.EAGAIN {
			t.Errorf("%s was opened (inotify read %d bytes, %v)", path, n, err)
		}
	}
}
