package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type runFlags struct {
	rm       bool
	registry bool
	platform string
}

func (a *app) runCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [--rm] [--registry] NAME|DIGEST|REF [CMD ARGS...]",
		Short: "Run an image with runc straight from a mount (oci2 mount --bundle, runc run)",
		Long: `Mount the image as a bundle (see 'oci2 mount --bundle'; from its registry
when the store lacks it), run its process, or CMD ARGS, with runc in the
foreground (stdin and a terminal passed through), unmount, and exit with
the container's exit code. The bundle stays in a directory under /var/tmp
(its upper/ holds what the container wrote) unless --rm.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.run(cmd.Context(), f, args[0], args[1:])
		},
	}
	cmd.Flags().SetInterspersed(false) // flags after NAME belong to CMD
	cmd.Flags().BoolVar(&f.rm, "rm", false, "remove the bundle when the container exits")
	cmd.Flags().BoolVar(&f.registry, "registry", false, "mount REF from its registry even when the store has the name")
	cmd.Flags().StringVar(&f.platform, "platform", "", "platform os/arch[/variant] of a multi-platform image")
	return cmd
}

func (a *app) run(ctx context.Context, f runFlags, image string, args []string) error {
	bundle, err := os.MkdirTemp("/var/tmp", "oci2-run-")
	if err != nil {
		return err
	}
	argv := []string{"mount", "--bundle"}
	if a.storeDir != "" {
		argv = append([]string{"--store", a.storeDir}, argv...)
	}
	if f.registry {
		argv = append(argv, "--registry")
	}
	if f.platform != "" {
		argv = append(argv, "--platform", f.platform)
	}
	if err := a.startMount(ctx, append(argv, image, bundle), bundle, false); err != nil {
		os.Remove(bundle)
		return err
	}
	defer func() {
		if err := a.umount(context.WithoutCancel(ctx), bundle); err != nil {
			warnf(os.Stderr, "%v", err)
		} else if f.rm {
			os.RemoveAll(bundle)
		}
	}()
	tty := term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
	if err := patchBundle(bundle, args, tty); err != nil {
		return err
	}
	id := "oci2-" + filepath.Base(bundle)
	state := filepath.Join(runtimeDir(), "..", "runc")
	c := exec.Command("runc", "--root", state, "run", "--bundle", bundle, id)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = c.Run()
	exec.Command("runc", "--root", state, "delete", "--force", id).Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return exitCodeError{ee.ExitCode()}
	}
	if err != nil {
		return fmt.Errorf("runc run: %w", err)
	}
	return nil
}

// patchBundle sets the process's arguments (when given) and whether it gets
// a terminal.
func patchBundle(bundle string, args []string, tty bool) error {
	p := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	proc, ok := cfg["process"].(map[string]any)
	if !ok {
		return fmt.Errorf("%s has no process", p)
	}
	if len(args) > 0 {
		proc["args"] = args
	}
	proc["terminal"] = tty
	if b, err = json.MarshalIndent(cfg, "", "\t"); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o600)
}
