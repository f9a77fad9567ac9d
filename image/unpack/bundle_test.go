package unpack_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	rt "github.com/oci2/oci2/image/reader/readertest"
	"github.com/oci2/oci2/image/unpack"
	"github.com/oci2/oci2/image/unpack/unpacktest"
)

func bundleImage(t *testing.T, cfg ocispec.ImageConfig, etc ...*rt.Node) (*rt.Node, rt.Image) {
	root := rt.Dir("", 0o755,
		rt.Dir("etc", 0o755, etc...),
		rt.Dir("bin", 0o755, rt.File("app", 0o755, []byte("#!/bin/sh\necho hi\n"))),
	)
	img := &ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config: cfg, RootFS: ocispec.RootFS{Type: "layers"}}
	return root, rt.Image{Streams: rt.Encode(root), Config: img}
}

func readSpec(t *testing.T, dir string) *specs.Spec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestBundle(t *testing.T) {
	cfg := ocispec.ImageConfig{
		User:       "app:staff",
		Entrypoint: []string{"/bin/app", "--flag"},
		Cmd:        []string{"serve"},
		Env:        []string{"A=1", "B=two words"},
		WorkingDir: "/srv",
	}
	root, ri := bundleImage(t, cfg,
		rt.File("passwd", 0o644, []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")),
		rt.File("group", 0o644, []byte("root:x:0:\nstaff:x:50:app\n")))
	img, cr := imageOf(t, ri)
	sb := newSandbox(t)
	st, err := unpack.Bundle(t.Context(), img, cr, sb.dest, unpack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 3 {
		t.Errorf("stats %+v", st)
	}
	fi, err := os.Stat(sb.dest)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("bundle dir mode %v, %v", fi.Mode(), err)
	}
	got, err := unpacktest.Take(filepath.Join(sb.dest, "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	if d := unpacktest.Diff(unpacktest.FromNode(root), got, unpacktest.Options{IgnoreOwners: !asRoot(t)}); len(d) > 0 {
		t.Errorf("rootfs differs:\n%s", strings.Join(d, "\n"))
	}
	s := readSpec(t, sb.dest)
	p := s.Process
	if !slices.Equal(p.Args, []string{"/bin/app", "--flag", "serve"}) ||
		!slices.Equal(p.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1", "B=two words"}) ||
		p.Cwd != "/srv" || p.Terminal || p.User.UID != 1000 || p.User.GID != 50 || len(p.User.AdditionalGids) != 0 {
		t.Errorf("process %+v", p)
	}
	if s.Root.Path != "rootfs" || s.Root.Readonly || s.Version != specs.Version || s.Hostname != "runc" {
		t.Errorf("spec root %+v version %s hostname %q", s.Root, s.Version, s.Hostname)
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
	}
	if w := "/proc /dev /dev/pts /dev/shm /dev/mqueue /sys /sys/fs/cgroup"; strings.Join(dests, " ") != w {
		t.Errorf("mounts %v, want %s", dests, w)
	}
	if len(s.Linux.Namespaces) < 5 || !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") ||
		!slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") || !p.NoNewPrivileges ||
		!slices.Equal(p.Capabilities.Bounding, []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}) {
		t.Errorf("linux %+v caps %+v", s.Linux, p.Capabilities)
	}
	// A second bundle into the same dir needs Force.
	if _, err := unpack.Bundle(t.Context(), img, cr, sb.dest, unpack.Options{}); err == nil {
		t.Errorf("bundle into a non-empty dir succeeded")
	}
	if _, err := unpack.Bundle(t.Context(), img, cr, sb.dest, unpack.Options{Force: true}); err != nil {
		t.Errorf("bundle with Force: %v", err)
	}
	sb.check(t)
}

func TestBundleUser(t *testing.T) {
	cases := []struct {
		name string
		user string
		etc  []*rt.Node
		want string // uid:gid, or an error substring
	}{
		{name: "no passwd numeric", user: "123", want: "123:0"},
		{name: "no passwd root", user: "", want: "0:0"},
		{name: "no passwd name", user: "app", want: `user "app": unable to find user app`},
		// /etc/passwd -> ../../../outside/etc/passwd resolves inside the
		// rootfs (to /outside/etc/passwd), never to the sandbox's file.
		{name: "passwd symlink escaping", user: "sentinel", etc: []*rt.Node{rt.Symlink("passwd", "../../../../outside/etc/passwd")},
			want: `user "sentinel": unable to find user sentinel`},
		{name: "passwd symlink inside", user: "app", etc: []*rt.Node{
			rt.Symlink("passwd", "/etc/real-passwd"),
			rt.File("real-passwd", 0o644, []byte("app:x:5:6::/:/bin/sh\n"))}, want: "5:6"},
		{name: "passwd is a fifo", user: "app", etc: []*rt.Node{rt.Fifo("passwd", 0o644)}, want: "not a regular file"},
		{name: "passwd is a dir", user: "app", etc: []*rt.Node{rt.Dir("passwd", 0o755)}, want: "not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, ri := bundleImage(t, ocispec.ImageConfig{User: tc.user, Cmd: []string{"x"}}, tc.etc...)
			img, cr := imageOf(t, ri)
			sb := newSandbox(t)
			// The sandbox file would resolve "sentinel" if it were read.
			os.WriteFile(filepath.Join(sb.outside, "etc", "passwd"), []byte("sentinel:x:9:9::/:/bin/sh\n"), 0o644)
			sb.before, _ = unpacktest.Take(sb.outside)
			_, err := unpack.Bundle(t.Context(), img, cr, sb.dest, unpack.Options{})
			if strings.Contains(tc.want, ":") && !strings.Contains(tc.want, " ") {
				if err != nil {
					t.Fatal(err)
				}
				u := readSpec(t, sb.dest).Process.User
				if got := fmt.Sprintf("%d:%d", u.UID, u.GID); got != tc.want {
					t.Errorf("user %s, want %s", got, tc.want)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBundleNoCommand(t *testing.T) {
	_, ri := bundleImage(t, ocispec.ImageConfig{})
	img, cr := imageOf(t, ri)
	sb := newSandbox(t)
	var warns []string
	if _, err := unpack.Bundle(t.Context(), img, cr, sb.dest, unpack.Options{
		Warn: func(p string, err error) { warns = append(warns, err.Error()) }}); err != nil {
		t.Fatal(err)
	}
	if s := readSpec(t, sb.dest); !slices.Equal(s.Process.Args, []string{"sh"}) || len(warns) != 1 {
		t.Errorf("args %v, warnings %q", s.Process.Args, warns)
	}
}
