// Command oci2-snapshotter serves containerd's snapshots API over a unix
// socket (a containerd proxy plugin) for package snapshotter: OCIv2 images
// imported with `oci2 containerd import` run from their FUSE mounts, other
// images as through containerd's overlayfs snapshotter.
//
//	oci2-snapshotter --address SOCKET --root STATEDIR --store OCI2STORE
//	oci2-snapshotter import --address CONTAINERD_SOCKET --namespace NS --snapshotter NAME < DESCRIPTION
//
// The second form is run by `oci2 containerd import`, which gives it the
// image's description (package importspec) as JSON on stdin: containerd's
// client lives in this binary, not in oci2.
//
// It logs to stderr and ends on SIGTERM or SIGINT, leaving the image
// mounts to the processes that serve them (running containers keep their
// files; the next start adopts them).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/v2/contrib/snapshotservice"
	"github.com/containerd/log"
	"google.golang.org/grpc"

	"github.com/oci2/oci2/snapshotter"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "import" {
		if err := runImport(os.Args[2:], os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, "oci2-snapshotter import:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "oci2-snapshotter:", err)
		os.Exit(1)
	}
}

func run() error {
	address := flag.String("address", "/run/oci2/snapshotter.sock", "unix socket to serve the snapshots API on")
	root := flag.String("root", "/var/lib/oci2-snapshotter", "state directory (snapshots, container layers)")
	store := flag.String("store", "", "oci2 store the images are mounted from (default oci2's)")
	oci2 := flag.String("oci2", "", "oci2 binary that serves the mounts (default: next to this one, else $PATH)")
	fetchAll := flag.Bool("fetch-all", false, "lazy mounts: pull the rest of the image in the background, after which the registry is not needed")
	readTimeout := flag.Duration("read-timeout", 30*time.Second, "lazy mounts: fail a read the registry does not answer in this long with EIO")
	insecure := flag.Bool("insecure", false, "lazy mounts: allow plain HTTP and unverified TLS for registries not on loopback")
	var caCerts []string
	flag.Func("ca-cert", "lazy mounts: PEM file of a CA to trust besides the system's (repeatable)", func(s string) error {
		caCerts = append(caCerts, s)
		return nil
	})
	prefetchDir := flag.String("prefetch-dir", "", "lazy mounts: fetch the chunks of the profile DIR/<manifest digest hex> (from oci2 mount --record), when there is one, before the mount is ready")
	level := flag.String("log-level", "info", "log level (debug, info, warn, error)")
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if err := log.SetLevel(*level); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *readTimeout <= 0 {
		return fmt.Errorf("--read-timeout %v: want a positive duration", *readTimeout)
	}
	lazy := []string{"--read-timeout", readTimeout.String()}
	if *fetchAll {
		lazy = append(lazy, "--fetch-all")
	}
	if *insecure {
		lazy = append(lazy, "--insecure")
	}
	for _, f := range caCerts {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("--ca-cert: %w", err)
		}
		lazy = append(lazy, "--ca-cert", f)
	}
	m, err := newCLIMounter(*oci2, *store, lazy)
	if err != nil {
		return err
	}
	m.prefetchDir = *prefetchDir
	sn, err := snapshotter.New(ctx, *root, m)
	if err != nil {
		return err
	}
	defer sn.Close()

	if err := os.MkdirAll(filepath.Dir(*address), 0o700); err != nil {
		return err
	}
	if err := os.Remove(*address); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the stale socket: %w", err)
	}
	l, err := net.Listen("unix", *address)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(srv, snapshotservice.FromSnapshotter(sn))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	log.G(ctx).Infof("serving snapshots on %s (root %s)", *address, *root)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	log.G(ctx).Info("stopping")
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		srv.Stop()
	}
	return nil
}

// cliMounter runs `oci2 mount`, whose serving process outlives this one.
// A lazy mount reaches its registry with this process's environment
// (DOCKER_CONFIG and its credential helpers), as `oci2 pull` would.
type cliMounter struct {
	bin   string
	store string
	lazy  []string // flags of lazy mounts (--read-timeout, registry options)

	prefetchDir string // profiles of lazy mounts, named by manifest digest hex
}

func newCLIMounter(bin, store string, lazy []string) (*cliMounter, error) {
	if bin == "" {
		exe, err := os.Executable()
		if err == nil {
			bin = filepath.Join(filepath.Dir(exe), "oci2")
		}
		if _, err := os.Stat(bin); err != nil {
			if bin, err = exec.LookPath("oci2"); err != nil {
				return nil, fmt.Errorf("no oci2 binary next to this one or on $PATH (--oci2): %w", err)
			}
		}
	}
	return &cliMounter{bin: bin, store: store, lazy: lazy}, nil
}

func (c *cliMounter) oci2(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if c.store != "" {
		args = append([]string{"--store", c.store}, args...)
	}
	out, err := exec.CommandContext(ctx, c.bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("oci2 %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Mount runs `oci2 mount`: of the store's manifest, or lazily of the
// manifest pinned in its repository (snapshotter.Image's fields are
// validated: a digest and a bare repository name, never a flag).
func (c *cliMounter) Mount(ctx context.Context, img snapshotter.Image, dir string) error {
	if img.Source == "" {
		return c.oci2(ctx, "mount", img.Manifest.String(), dir)
	}
	args := append([]string{"mount", "--registry"}, c.lazy...)
	if p := c.profile(img); p != "" {
		args = append(args, "--prefetch", p)
	}
	args = append(args, img.Source+"@"+img.Manifest.String(), dir)
	return c.oci2(ctx, args...)
}

// profile is the prefetch profile recorded for img, "" when there is none:
// the mount then fetches each file's chunks when a container first reads
// it, one round trip at a time, where a profile merges them up front.
func (c *cliMounter) profile(img snapshotter.Image) string {
	if c.prefetchDir == "" {
		return ""
	}
	p := filepath.Join(c.prefetchDir, img.Manifest.Encoded())
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	return p
}

func (c *cliMounter) Unmount(ctx context.Context, dir string) error {
	return c.oci2(ctx, "umount", dir)
}
