package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

// sample is one measured command.
type sample struct {
	Wall   time.Duration
	MaxRSS int64 // bytes: the largest process of the command's tree
	Err    error
}

// runner runs commands and remembers failures.
type runner struct {
	env     []string
	verbose bool
	failed  []string
}

// sh runs a bash command line and measures it. Peak memory comes from
// wait4's rusage, which covers the process and every descendant it reaped
// (for a pipeline: its largest member).
func (r *runner) sh(ctx context.Context, script string) sample {
	return r.cmd(ctx, "bash", "-o", "pipefail", "-c", script)
}

func (r *runner) cmd(ctx context.Context, name string, args ...string) sample {
	c := groupCommand(ctx, name, args...)
	c.Env = append(os.Environ(), r.env...)
	var errb bytes.Buffer
	c.Stdout, c.Stderr = &errb, &errb
	if r.verbose {
		fmt.Fprintf(os.Stderr, "+ %s %s\n", name, strings.Join(args, " "))
	}
	t0 := time.Now()
	err := c.Run()
	s := sample{Wall: time.Since(t0), MaxRSS: maxRSS(c)}
	if err != nil {
		s.Err = fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(errb.String(), 2000))
		r.failed = append(r.failed, s.Err.Error())
		fmt.Fprintln(os.Stderr, "bench: FAILED:", s.Err)
	}
	return s
}

// output runs a command and returns its stdout (for versions and JSON).
func (r *runner) output(ctx context.Context, name string, args ...string) (string, error) {
	c := groupCommand(ctx, name, args...)
	c.Env = append(os.Environ(), r.env...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(errb.String(), 500))
	}
	return out.String(), nil
}

// groupCommand is exec.CommandContext whose cancel kills the command's
// whole process group: killing only bash leaves a pipeline's members (gzip
// fed by the bench, tar) running, and holding the output pipe open.
func groupCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, name, args...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 5 * time.Second
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// stats summarizes repeated samples of one operation.
type stats struct {
	N                int
	Median, Min, Max time.Duration
	MaxRSS           int64
	Err              error
}

func summarize(ss []sample) stats {
	var st stats
	var walls []time.Duration
	for _, s := range ss {
		if s.Err != nil {
			st.Err = s.Err
			continue
		}
		walls = append(walls, s.Wall)
		st.MaxRSS = max(st.MaxRSS, s.MaxRSS)
	}
	if len(walls) == 0 {
		return st
	}
	sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
	st.N = len(walls)
	st.Min, st.Max = walls[0], walls[len(walls)-1]
	if n := len(walls); n%2 == 1 {
		st.Median = walls[n/2]
	} else {
		st.Median = (walls[n/2-1] + walls[n/2]) / 2
	}
	return st
}

// have reports whether a command is installed.
func have(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// maxRSS is the peak resident set of a finished command's process tree.
func maxRSS(c *exec.Cmd) int64 {
	if c.ProcessState == nil {
		return 0
	}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}
