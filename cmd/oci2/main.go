// Command oci2 creates, inspects, unpacks and maintains OCIv2 images in a
// local store.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/oci2/oci2/store"
)

// Exit codes.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitProblems = 3 // check found problems
)

// usageError marks a wrong invocation (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitCodeError ends the command with a code of its own and no message (the
// exit status of a container oci2 run ran).
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// errProblems is returned by check when it found problems (exit code 3).
var errProblems = errors.New("check found problems")

// app holds the global flags and the opened store.
type app struct {
	storeDir string
	jsonOut  bool
	started  bool // a command's run began: later errors are not usage errors
	// indexStats prints, at exit, what the command's index scans read
	// (index.ProcessScanStats): nothing when the store's index files
	// cover it. Tests and benchmarks use it; it is hidden.
	indexStats bool
	st         *storeHandle
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string) int {
	a := &app{}
	root := a.rootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if a.st != nil {
		a.st.Close()
	}
	if a.indexStats {
		printIndexStats()
	}
	if err == nil {
		return exitOK
	}
	var ue usageError
	var ee exitCodeError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, errProblems):
		return exitProblems
	case errors.As(err, &ue) || !a.started:
		fmt.Fprintf(os.Stderr, "oci2: %v\nRun 'oci2 --help' for usage.\n", err)
		return exitUsage
	}
	fmt.Fprintf(os.Stderr, "oci2: %v\n", err)
	if errors.Is(err, store.ErrLocked) {
		fmt.Fprintln(os.Stderr, "oci2: another oci2 process is using the store; retry when it is done")
	}
	return exitError
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "oci2",
		Short:         "Build, inspect and unpack OCIv2 images (chunked, deduplicated, no tar layers)",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			a.started = true
			return nil
		},
	}
	root.PersistentFlags().StringVar(&a.storeDir, "store", "", "store directory (default $OCI2_STORE, else ~/.local/share/oci2)")
	root.PersistentFlags().BoolVar(&a.indexStats, "index-stats", false, "print what index scans read, as JSON on stderr")
	_ = root.PersistentFlags().MarkHidden("index-stats")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		a.createCmd(), a.unpackCmd(), a.imagesCmd(), a.inspectCmd(), a.tagCmd(), a.rmCmd(),
		a.diffCmd(), a.duCmd(), a.checkCmd(), a.gcCmd(), a.importCmd(), a.exportCmd(),
		a.pushCmd(), a.pullCmd(), a.copyCmd(), a.mountCmd(), a.umountCmd(), a.runCmd(),
		a.containerdCmd(),
	)
	return root
}

// jsonFlag adds --json to a command whose output a script may parse.
func (a *app) jsonFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&a.jsonOut, "json", false, "print JSON")
}

// exactArgs is cobra.ExactArgs with a message naming the arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s wants %s, got %d argument(s)", cmd.Name(), names, len(args))
		}
		return nil
	}
}
