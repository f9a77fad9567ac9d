package unpack

import (
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultPath is the PATH a process gets when the image config sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultSpec returns what `runc spec` writes (runc's specconv.Example), with
// a cgroup namespace when cgroup2 is true (runc adds one on a cgroup v2
// host).
func DefaultSpec(cgroup2 bool) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{
			Terminal:        true,
			User:            specs.User{},
			Args:            []string{"sh"},
			Env:             []string{defaultPath, "TERM=xterm"},
			Cwd:             "/",
			NoNewPrivileges: true,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  append([]string(nil), caps...),
				Permitted: append([]string(nil), caps...),
				Effective: append([]string(nil), caps...),
			},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		},
		Hostname: "runc",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
				Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
				Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
				Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue",
				Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs",
				Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
				Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
				"/proc/scsi", "/sys/devices/virtual/tpm",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
		},
	}
	if cgroup2 {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	return s
}

// imageSpec is the default spec running the image config's process as
// user: args are Entrypoint then Cmd (runc's default "sh" when both are
// empty, reported by ok == false), env gets a PATH when it has none, cwd is
// WorkingDir or "/"; no terminal, and a writable root.
func imageSpec(cfg *ocispec.ImageConfig, user specs.User, cgroup2 bool) (s *specs.Spec, ok bool) {
	s = DefaultSpec(cgroup2)
	s.Root.Readonly = false
	p := s.Process
	p.Terminal = false
	p.User = user
	args := append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)
	if ok = len(args) > 0; ok {
		p.Args = args
	}
	p.Env = append([]string(nil), cfg.Env...)
	hasPath := false
	for _, e := range p.Env {
		hasPath = hasPath || strings.HasPrefix(e, "PATH=")
	}
	if !hasPath {
		p.Env = append([]string{defaultPath}, p.Env...)
	}
	p.Cwd = "/"
	if cfg.WorkingDir != "" {
		p.Cwd = cfg.WorkingDir
	}
	return s, ok
}
