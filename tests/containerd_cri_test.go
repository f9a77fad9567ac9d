package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/oci2/oci2/internal/testenv"
)

// pauseSource is the pod sandbox's process: it waits for a signal.
const pauseSource = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
`

// criConfig enables containerd's CRI plugin with oci2 as its snapshotter
// and the imported pause image as the sandbox image; no CNI (the pod uses
// the host's network).
func criConfig(dir string) string {
	return fmt.Sprintf(`disabled_plugins = ["io.containerd.nri.v1.nri"]

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "oci2"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "docker.io/library/pause:oci2"

# This machine refuses to lower oom_score_adj (CRI gives sandboxes -998).
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true

[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = [%q]
  conf_dir = %q
`, filepath.Join(dir, "cni-bin"), filepath.Join(dir, "cni-conf"))
}

// TestContainerdCRI: Kubernetes' way in. With containerd's CRI plugin set
// to snapshotter oci2, OCIv2 images imported into namespace k8s.io (the
// pod sandbox's pause image and the app) run as a pod through the CRI API
// the kubelet uses, without any pull: RunPodSandbox, CreateContainer,
// StartContainer, and the container's log holds its output.
func TestContainerdCRI(t *testing.T) {
	requireRoot(t)
	requireTools(t, "containerd", "containerd-shim-runc-v2", "ctr", "runc")
	testenv.RequireFUSE(t)
	dir := workDir(t)
	s := newStore(t, filepath.Join(dir, "store"))
	src := helloTree(t, filepath.Join(dir, "hello-src"))
	s.create(src, "hello:latest", helloConfig(t, s)...)
	pause := filepath.Join(dir, "pause-src")
	buildStatic(t, pauseSource, filepath.Join(pause, "pause"))
	s.create(pause, "pause:oci2", "--entrypoint", "/pause")

	e := startOCI2ContainerdWith(t, dir, s, nil, func(extra string) *ctdDaemon {
		return startContainerdWith(t, dir, criConfig(dir), extra)
	})
	for _, img := range []string{"docker.io/library/pause:oci2", "docker.io/library/hello:latest"} {
		e.importImage(t, img, "--namespace", "k8s.io")
	}
	conn, err := grpc.NewClient("unix://"+e.ctd.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() }) // after the pod's cleanup
	rt, is := cri.NewRuntimeServiceClient(conn), cri.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// CRI learns of the imported images from containerd's events.
	awaitCRIImage(t, ctx, is, "docker.io/library/hello:latest")
	logDir := filepath.Join(dir, "pod-logs")
	sbCfg := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: "oci2-pod", Uid: fmt.Sprintf("uid-%d", os.Getpid()), Namespace: "default"},
		LogDirectory: logDir,
		Linux: &cri.LinuxPodSandboxConfig{SecurityContext: &cri.LinuxSandboxSecurityContext{
			NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE},
		}},
	}
	sb, err := rt.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: sbCfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v\nsnapshotter log:\n%s\ncontainerd log:\n%s", err, clip(e.sn.logText()), e.ctd.logTail())
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		rt.StopPodSandbox(cctx, &cri.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId})
		rt.RemovePodSandbox(cctx, &cri.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId})
	})
	c, err := rt.CreateContainer(ctx, &cri.CreateContainerRequest{
		PodSandboxId: sb.PodSandboxId,
		Config: &cri.ContainerConfig{
			Metadata: &cri.ContainerMetadata{Name: "hello"},
			Image:    &cri.ImageSpec{Image: "docker.io/library/hello:latest"},
			LogPath:  "hello.log",
		},
		SandboxConfig: sbCfg,
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v\ncontainerd log:\n%s", err, e.ctd.logTail())
	}
	if _, err := rt.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v\ncontainerd log:\n%s", err, e.ctd.logTail())
	}
	awaitCRIExit(t, ctx, rt, c.ContainerId)
	log, _ := os.ReadFile(filepath.Join(logDir, "hello.log"))
	if !strings.Contains(string(log), helloOut) {
		t.Errorf("the pod's container logged %q, want %q", log, helloOut)
	}
	if ms := fuseMountsUnder(e.sn.root); len(ms) != 2 {
		t.Errorf("FUSE mounts %q, want the pause image's and the app's", ms)
	}
	if _, err := rt.RemoveContainer(ctx, &cri.RemoveContainerRequest{ContainerId: c.ContainerId}); err != nil {
		t.Errorf("RemoveContainer: %v", err)
	}
	if _, err := rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
		t.Errorf("StopPodSandbox: %v", err)
	}
	if _, err := rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
		t.Errorf("RemovePodSandbox: %v", err)
	}
	// As the kubelet's image gc does: CRI removes every name it gave the
	// image (its ID, its repo digest) and the image snapshot with them.
	for _, img := range []string{"docker.io/library/pause:oci2", "docker.io/library/hello:latest"} {
		if _, err := is.RemoveImage(ctx, &cri.RemoveImageRequest{Image: &cri.ImageSpec{Image: img}}); err != nil {
			t.Errorf("RemoveImage %s: %v", img, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(mountsUnder(e.sn.root)) != 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if ms := mountsUnder(e.sn.root); len(ms) != 0 {
		t.Errorf("mounts left under the snapshotter's root: %q\nimages: %s", ms, e.ctr("-n", "k8s.io", "images", "ls", "-q").Stdout)
	}
	if ls := e.ctr("-n", "k8s.io", "snapshots", "--snapshotter", "oci2", "ls").Stdout; strings.Count(strings.TrimSpace(ls), "\n") != 0 {
		t.Errorf("snapshots left: %s", ls)
	}
}

// awaitCRIImage waits (bounded by ctx) until CRI knows the image.
func awaitCRIImage(t *testing.T, ctx context.Context, is cri.ImageServiceClient, ref string) {
	t.Helper()
	for {
		st, err := is.ImageStatus(ctx, &cri.ImageStatusRequest{Image: &cri.ImageSpec{Image: ref}})
		if err == nil && st.Image != nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("CRI does not know the imported image %s: %v", ref, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// awaitCRIExit waits (bounded by ctx) until the container has exited.
func awaitCRIExit(t *testing.T, ctx context.Context, rt cri.RuntimeServiceClient, id string) {
	t.Helper()
	for {
		st, err := rt.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: id})
		if err == nil && st.Status.State == cri.ContainerState_CONTAINER_EXITED {
			if st.Status.ExitCode != 0 {
				t.Errorf("container exited %d: %s %s", st.Status.ExitCode, st.Status.Reason, st.Status.Message)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("container not exited: %v %v", st, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
