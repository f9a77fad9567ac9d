package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// findOci2 returns binDir/oci2, or builds ./cmd/oci2 into scratch.
func findOci2(ctx context.Context, binDir, scratch string) (string, error) {
	if binDir != "" {
		p, err := filepath.Abs(filepath.Join(binDir, "oci2"))
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("no oci2 in -bin %s (make build): %w", binDir, err)
		}
		return p, nil
	}
	p := filepath.Join(scratch, "oci2")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", p, "./cmd/oci2").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/oci2: %w\n%s", err, out)
	}
	return p, nil
}

// machine describes the host for the results; work is the scratch
// directory, whose file system is named.
func machine(work string) []string {
	out := []string{fmt.Sprintf("%d CPUs", runtime.NumCPU())}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				out = append(out, strings.TrimSpace(v))
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		out = append(out, strings.Join(strings.Fields(line), " "))
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		out = append(out, "Linux "+cstr(u.Release[:]))
	}
	if b, err := os.ReadFile("/etc/debian_version"); err == nil {
		out = append(out, "Debian "+strings.TrimSpace(string(b)))
	}
	var fs unix.Statfs_t
	if unix.Statfs(work, &fs) == nil {
		name := map[int64]string{0xEF53: "ext4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x01021994: "tmpfs", 0x794c7630: "overlayfs"}[int64(fs.Type)]
		if name == "" {
			name = fmt.Sprintf("fs type %#x", fs.Type)
		}
		out = append(out, fmt.Sprintf("scratch %s on %s", work, name))
	}
	out = append(out, runtime.Version())
	return out
}

func cstr(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// versions lists the version of every external tool used.
func versions(ctx context.Context, r *runner, oci2 string, storers []storer) []string {
	cmds := [][]string{{"tar", "--version"}, {"gzip", "--version"}, {"zstd", "--version"}, {"umoci", "--version"}}
	for _, s := range storers {
		switch s.Name() {
		case "restic":
			cmds = append(cmds, []string{"restic", "version"})
		case "borg":
			cmds = append(cmds, []string{"borg", "--version"})
		case "casync":
			cmds = append(cmds, []string{"casync", "--version"})
		}
	}
	var out []string
	for _, c := range cmds {
		if !have(c[0]) {
			continue
		}
		v, err := r.output(ctx, c[0], c[1:]...)
		if err != nil {
			continue
		}
		line, _, _ := strings.Cut(strings.TrimSpace(v), "\n")
		out = append(out, line)
	}
	return out
}

// cpuPressure is " (CPU pressure N%)": the share of the last minute some
// task waited for a CPU (PSI), "" where the kernel has no PSI.
func cpuPressure() string {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return ""
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "avg60="); ok {
			return " (CPU pressure " + v + "%)"
		}
	}
	return ""
}

// loadavg is the 1, 5 and 15 minute load average.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
