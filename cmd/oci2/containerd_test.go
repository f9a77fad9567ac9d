package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestContainerdImportNoSnapshotter: without oci2-snapshotter next to oci2
// or on $PATH, the import fails naming it, before touching the store.
func TestContainerdImportNoSnapshotter(t *testing.T) {
	store := t.TempDir()
	cmd := exec.Command(oci2Bin, "--store", store, "containerd", "import", "hello:latest")
	cmd.Env = []string{"PATH=" + t.TempDir(), "HOME=" + t.TempDir()}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		t.Fatalf("import without oci2-snapshotter succeeded\n%s", stderr.String())
	}
	if msg := stderr.String(); !strings.Contains(msg, "oci2-snapshotter") || !strings.Contains(msg, "$PATH") {
		t.Fatalf("error does not name the missing oci2-snapshotter: %s", msg)
	}
}

// TestNoContainerdClient: containerd's client (grpc, protobuf, its API,
// bbolt) lives in oci2-snapshotter, which `oci2 containerd import` runs;
// linking it into oci2 made the binary 10 MB bigger.
func TestNoContainerdClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, heavy := range []string{"google.golang.org/grpc", "google.golang.org/protobuf",
			"github.com/containerd/containerd", "go.etcd.io/bbolt"} {
			if p == heavy || strings.HasPrefix(p, heavy+"/") {
				t.Errorf("oci2 links %s", p)
			}
		}
	}
}
