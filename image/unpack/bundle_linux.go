//go:build linux

package unpack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/internal/regfile"
)

// maxUserDBSize bounds /etc/passwd and /etc/group read from an image.
const maxUserDBSize = 4 << 20

func bundle(ctx context.Context, img *reader.Image, cr *reader.ChunkReader, dir string, opts Options) (Stats, error) {
	total, err := scan(ctx, img, cr, opts.Limits)
	if err != nil {
		return Stats{}, err
	}
	bfd, err := openDest(dir, 0o700, opts.Force)
	if err != nil {
		return Stats{}, fmt.Errorf("writing bundle: %w", err)
	}
	defer unix.Close(bfd)
	if err := unix.Fchmod(bfd, 0o700); err != nil {
		return Stats{}, fmt.Errorf("writing bundle: %w", err)
	}
	u := &unpacker{opts: opts}
	rfd, err := u.mkdir(bfd, "rootfs")
	if err != nil {
		return Stats{}, fmt.Errorf("writing bundle: rootfs: %w", err)
	}
	defer unix.Close(rfd)
	st, err := unpackAt(ctx, img, cr, rfd, total, opts)
	if err != nil {
		return st, err
	}
	spec, err := specAt(img, rfd, opts.Warn)
	if err != nil {
		return st, fmt.Errorf("writing bundle: %w", err)
	}
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return st, err
	}
	if err := writeFileAt(bfd, "config.json", b, 0o600); err != nil {
		return st, fmt.Errorf("writing bundle: config.json: %w", err)
	}
	return st, nil
}

// Spec returns the runtime spec Bundle writes for img unpacked at rootfs:
// the user is resolved with rootfs's /etc/passwd and /etc/group, read
// without letting symlinks leave rootfs.
func Spec(img *reader.Image, rootfs string, warn func(path string, err error)) (*specs.Spec, error) {
	fd, err := unix.Open(rootfs, dirFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", rootfs, err)
	}
	defer unix.Close(fd)
	return specAt(img, fd, warn)
}

func specAt(img *reader.Image, rootfd int, warn func(string, error)) (*specs.Spec, error) {
	cfg := &img.Config.Config
	passwd, err := readFileInRoot(rootfd, "etc/passwd", maxUserDBSize)
	if err != nil {
		return nil, err
	}
	group, err := readFileInRoot(rootfd, "etc/group", maxUserDBSize)
	if err != nil {
		return nil, err
	}
	user, err := resolveUser(cfg.User, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("resolving the config's user: %w", err)
	}
	s, ok := imageSpec(cfg, user, isCgroup2())
	if !ok && warn != nil {
		warn("", errors.New("the image config has neither Entrypoint nor Cmd: the bundle runs \"sh\""))
	}
	return s, nil
}

// isCgroup2 reports a cgroup v2 (unified) host, where runc's default spec
// adds a cgroup namespace.
func isCgroup2() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// readFileInRoot reads the regular file at path with rootfd as "/":
// symlinks resolve inside the root. Its type is checked before it is opened
// for reading: as root the unpack has just created the image's device nodes,
// and opening one (a watchdog, a tty) would reach a host device. A missing
// file reads as empty.
func readFileInRoot(rootfd int, path string, max int64) ([]byte, error) {
	dup, err := unix.FcntlInt(uintptr(rootfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	root := os.NewFile(uintptr(dup), "rootfs")
	defer root.Close()
	f, _, err := regfile.OpenInRoot(root, path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("/%s in the rootfs: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading /%s in the rootfs: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("/%s in the rootfs is larger than %d bytes", path, max)
	}
	return b, nil
}

// writeFileAt writes name in dirfd atomically (a temporary file renamed
// into place), never following a symlink.
func writeFileAt(dirfd int, name string, data []byte, mode uint32) error {
	tmp := "." + name + ".tmp"
	if err := unix.Unlinkat(dirfd, tmp, 0); err != nil && err != unix.ENOENT {
		return err
	}
	fd, err := unix.Openat(dirfd, tmp, fileFlags, mode)
	if err != nil {
		return err
	}
	err = pwriteAll(fd, data, 0)
	if err == nil {
		err = unix.Fsync(fd)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dirfd, tmp, dirfd, name)
	}
	if err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
	}
	return err
}
