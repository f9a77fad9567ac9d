package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func (a *app) umountCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "umount DIR",
		Short: "End an 'oci2 mount' at DIR (and its bundle's overlay)",
		Long: `Unmount what 'oci2 mount' mounted at DIR: for a bundle the overlay rootfs
first, then the FUSE mount. A mount still in use (a running container, an
open file) is refused. The serving process then exits.`,
		Args: exactArgs(1, "DIR"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.umount(cmd.Context(), args[0]) },
	}
}

func (a *app) umount(ctx context.Context, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	st, err := readMountState(abs)
	if errors.Is(err, os.ErrNotExist) {
		st = &mountState{Dir: abs}
	} else if err != nil {
		return err
	}
	fuseDir := abs
	if st.Bundle {
		fuseDir = filepath.Join(abs, "lower")
		if err := unmountBusy(filepath.Join(abs, "rootfs")); err != nil {
			return err
		}
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(fuseDir, &sfs); err != nil {
		return err
	}
	if sfs.Type != unix.FUSE_SUPER_MAGIC {
		return fmt.Errorf("%s is not an oci2 mount", dir)
	}
	if err := unmountBusy(fuseDir); err != nil {
		return err
	}
	if err := waitExit(ctx, st.PID, unmountWait); err != nil {
		return err
	}
	reportLog(abs)
	return nil
}

// reportLog passes on what the serving process of the mount at dir logged
// (read errors, registry warnings) and removes its log.
func reportLog(dir string) {
	_, logPath := statePaths(dir)
	b, err := os.ReadFile(logPath)
	if err != nil {
		return
	}
	os.Remove(logPath)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(b) > 0 {
		if len(lines) > 20 {
			lines = append([]string{fmt.Sprintf("... %d earlier lines", len(lines)-20)}, lines[len(lines)-20:]...)
		}
		fmt.Fprintf(os.Stderr, "oci2: the mount at %s logged:\n  %s\n", dir, strings.Join(lines, "\n  "))
	}
}

// unmountBusy unmounts dir, explaining EBUSY.
func unmountBusy(dir string) error {
	err := unix.Unmount(dir, 0)
	switch {
	case err == nil || errors.Is(err, unix.EINVAL): // not (or no longer) a mount point
		return nil
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("unmounting %s: still in use (a running container or an open file): %w", dir, err)
	}
	return fmt.Errorf("unmounting %s: %w", dir, err)
}

// waitExit waits, at most d, for the serving process to exit.
func waitExit(ctx context.Context, pid int, d time.Duration) error {
	if pid <= 0 {
		return nil
	}
	deadline := time.Now().Add(d)
	for alive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the mount process %d has not exited %v after the unmount", pid, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// alive reports a process that exists and is not a zombie (its new parent
// may reap it late).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
