package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/oci2/oci2/image/mountfs"
	"github.com/oci2/oci2/transfer"
)

type mountFlags struct {
	bundle      bool
	foreground  bool
	debug       bool
	status      bool
	fromReg     bool
	fetchAll    bool
	record      string
	prefetch    string
	readTimeout time.Duration
	platform    string
	remote      remoteFlags
	readyFd     int // set by the background start: the serving child's ready pipe
}

func (a *app) mountCmd() *cobra.Command {
	var f mountFlags
	cmd := &cobra.Command{
		Use:   "mount [--bundle] [--foreground] [--registry] [--platform os/arch] NAME|DIGEST|REF DIR",
		Short: "Serve an image as a read-only FUSE filesystem at DIR, without unpacking it",
		Long: `Mount the image NAME|DIGEST of the store at DIR (an existing directory) as
a read-only FUSE filesystem: the image's metadata is read and validated
first, file data is read when a file is read, every chunk verified against
the image's tree. The command returns once the mount is ready and serves it
from a background process until 'oci2 umount DIR'; with --foreground it
serves until unmounted or interrupted.

A name the store lacks (or any REF with --registry) is mounted straight
from its registry: its metadata is fetched into the store, file data when a
file is first read (a small file whole, a large one a window at a time, in
a few range requests per pack), each frame verified and kept in the store,
so the next mount or 'oci2 pull' does not fetch it again. A read the
registry does not answer within --read-timeout fails with EIO.
'oci2 mount --status DIR' prints what a mount has read and fetched.
--fetch-all then pulls the rest in the background and names the image in
the store. --record FILE writes the chunks read, in first-read order, at
unmount; --prefetch FILE fetches a profile's chunks before the mount is
ready, in a few parallel range requests (chunk IDs name
content, so a profile of v1 helps v2 where files did not change).

With --bundle, DIR (missing or empty) becomes an OCI runtime bundle for
runc: DIR/lower is the FUSE mount, DIR/rootfs an overlay of it with
DIR/upper and DIR/work, and DIR/config.json is what 'unpack --bundle'
writes, so 'runc run --bundle DIR ID' starts the container before any file
is copied. 'oci2 umount DIR' unmounts both and keeps DIR/upper.

Needs root (mounts without fusermount). The store is leased only while the
metadata loads: removing the image and running gc under a mount makes its
unread files fail with EIO.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if f.status {
				return exactArgs(1, "DIR")(cmd, args)
			}
			return exactArgs(2, "NAME|DIGEST|REF and DIR")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.status {
				return printMountStatus(args[0])
			}
			if f.foreground || f.readyFd > 0 {
				return a.serveMount(cmd.Context(), f, args[0], args[1])
			}
			return a.startMount(cmd.Context(), os.Args[1:], args[1], true)
		},
	}
	cmd.Flags().BoolVar(&f.bundle, "bundle", false, "make DIR an OCI runtime bundle (overlay rootfs/ over the mount, config.json)")
	cmd.Flags().BoolVar(&f.foreground, "foreground", false, "serve in this process until unmounted or interrupted")
	cmd.Flags().BoolVar(&f.debug, "debug", false, "log every FUSE request to stderr")
	cmd.Flags().StringVar(&f.platform, "platform", "", "platform os/arch[/variant] of a multi-platform image")
	cmd.Flags().BoolVar(&f.status, "status", false, "print what the mount at DIR has read and fetched (JSON)")
	cmd.Flags().BoolVar(&f.fromReg, "registry", false, "mount REF from its registry even when the store has the name")
	cmd.Flags().BoolVar(&f.fetchAll, "fetch-all", false, "lazy mount: pull the rest of the image in the background and name it in the store")
	cmd.Flags().StringVar(&f.record, "record", "", "write the chunks read, first read first, to FILE at unmount (a prefetch profile)")
	cmd.Flags().StringVar(&f.prefetch, "prefetch", "", "lazy mount: fetch the chunks of profile FILE (from --record) before the mount is ready")
	cmd.Flags().DurationVar(&f.readTimeout, "read-timeout", 30*time.Second, "fail a read from the registry with EIO after this long")
	f.remote.add(cmd, false)
	cmd.Flags().IntVar(&f.readyFd, "ready-fd", 0, "")
	cmd.Flags().MarkHidden("ready-fd")
	return cmd
}

// mountState is what a serving process records about its mount, so that
// umount finds it, updated as it serves.
type mountState struct {
	PID      int           `json:"pid"`
	Dir      string        `json:"dir"`
	Image    string        `json:"image"`
	Manifest string        `json:"manifest"`
	Bundle   bool          `json:"bundle"`
	Lazy     bool          `json:"lazy"` // from a registry
	Started  time.Time     `json:"started"`
	Served   mountfs.Stats `json:"served"`
	// Fetched is what came from the registry (lazy mounts), metadata
	// included.
	Fetched *transfer.Result `json:"fetched,omitempty"`
	// Prefetch and FetchAll are "running", "done" or an error; Pulled is
	// what --fetch-all's pull fetched.
	Prefetch string           `json:"prefetch,omitempty"`
	FetchAll string           `json:"fetch_all,omitempty"`
	Pulled   *transfer.Result `json:"pulled,omitempty"`
}

// printMountStatus prints the state of the mount at dir.
func printMountStatus(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	st, err := readMountState(abs)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: no oci2 mount is served there", dir)
	}
	if err != nil {
		return err
	}
	return printJSON(st)
}

// runtimeDir holds the state and log files of mounts: /run/oci2 for root,
// else $XDG_RUNTIME_DIR/oci2 or a per-user directory in the temp dir.
func runtimeDir() string {
	if os.Geteuid() == 0 {
		return "/run/oci2/mounts"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "oci2", "mounts")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("oci2-%d", os.Geteuid()), "mounts")
}

// statePaths returns the state and log file of the mount at dir (absolute).
func statePaths(dir string) (state, log string) {
	h := sha256.Sum256([]byte(dir))
	base := filepath.Join(runtimeDir(), hex.EncodeToString(h[:8]))
	return base + ".json", base + ".log"
}

func readMountState(dir string) (*mountState, error) {
	sp, _ := statePaths(dir)
	b, err := os.ReadFile(sp)
	if err != nil {
		return nil, err
	}
	var s mountState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("mount state %s: %w", sp, err)
	}
	return &s, nil
}

// startMount runs oci2 with argv (a mount of dir) as a serving process in
// its own session, and returns when it reports the mount ready (or failed,
// with its log).
func (a *app) startMount(ctx context.Context, argv []string, dir string, announce bool) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(runtimeDir(), 0o700); err != nil {
		return err
	}
	_, logPath := statePaths(abs)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(exe, append(argv, "--ready-fd=3")...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("starting the mount process: %w", err)
	}
	w.Close()
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		ready <- line == "ready\n"
	}()
	select {
	case ok := <-ready:
		if ok {
			pid := cmd.Process.Pid
			cmd.Process.Release()
			if !announce {
				return nil
			}
			fmt.Fprintf(os.Stderr, "mounted at %s (pid %d; oci2 umount %s ends it; log %s)\n", abs, pid, dir, logPath)
			return nil
		}
	case <-ctx.Done():
		cmd.Process.Signal(syscall.SIGTERM)
	}
	cmd.Wait()
	b, _ := os.ReadFile(logPath)
	os.Remove(logPath) // its content is the error returned
	msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(b)), "oci2: "))
	if msg == "" {
		msg = "the mount process exited without a message"
	}
	return errors.New(msg)
}
