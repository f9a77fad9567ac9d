package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestStoreIsOCILayout: skopeo reads the store directory as an OCI image
// layout: the image index by its docker-normalized name, and the config.
func TestStoreIsOCILayout(t *testing.T) {
	requireTools(t, "skopeo")
	_, _, s, d := smallImage(t, "interop:v1")

	for _, p := range []string{"oci-layout", "index.json", "blobs/sha256"} {
		if _, err := os.Stat(filepath.Join(s.dir, p)); err != nil {
			t.Errorf("store is not an OCI layout: %v", err)
		}
	}
	ref := "oci:" + s.dir + ":docker.io/library/interop:v1"
	raw := mustRun(t, nil, "skopeo", "inspect", "--raw", ref).Stdout
	var idx struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Platform  *struct {
				Architecture string `json:"architecture"`
				OS           string `json:"os"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(raw), &idx); err != nil {
		t.Fatalf("skopeo inspect --raw: %v\n%s", err, raw)
	}
	if idx.MediaType != "application/vnd.oci.image.index.v1+json" || len(idx.Manifests) != 1 {
		t.Fatalf("want an image index with one manifest, got %s", raw)
	}
	m := idx.Manifests[0]
	if m.Platform == nil || m.Platform.OS != "linux" || m.Platform.Architecture != runtime.GOARCH {
		t.Errorf("manifest platform %+v, want linux/%s", m.Platform, runtime.GOARCH)
	}
	// create prints the index (or manifest) digest: it must be a stored blob
	if _, err := os.Stat(filepath.Join(s.dir, "blobs/sha256", strings.TrimPrefix(d, "sha256:"))); err != nil {
		t.Errorf("digest %s printed by create is not a blob of the store: %v", d, err)
	}

	cfgRaw := mustRun(t, nil, "skopeo", "inspect", "--config", ref).Stdout
	var cfg struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		RootFS       struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal([]byte(cfgRaw), &cfg); err != nil {
		t.Fatalf("skopeo inspect --config: %v\n%s", err, cfgRaw)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != 0 {
		t.Errorf("config %+v: want linux/%s, rootfs layers with no diff_ids (SPEC.md §6.1)", cfg, runtime.GOARCH)
	}
}

// TestExportUmociUnpack: `oci2 export` makes an ordinary single-layer OCI
// image that skopeo inspects and umoci unpacks to the same tree.
func TestExportUmociUnpack(t *testing.T) {
	requireRoot(t)
	requireTools(t, "skopeo", "umoci")
	dir, src, s, _ := smallImage(t, "interop:v1")

	layout := filepath.Join(dir, "exported")
	s.must("export", "interop:v1", "oci:"+layout+":v1")
	raw := mustRun(t, nil, "skopeo", "inspect", "--raw", "oci:"+layout+":v1").Stdout
	if strings.Contains(raw, "vnd.oci2") {
		t.Errorf("exported image still names oci2 media types:\n%s", raw)
	}

	bundle := filepath.Join(dir, "umoci-bundle")
	mustRun(t, nil, "umoci", "unpack", "--image", layout+":v1", bundle)
	compareTrees(t, snapshot(t, src), snapshot(t, filepath.Join(bundle, "rootfs")), compareOptions{
		SkipRoot: true, // the single layer may not carry "./"
	})

	// and oci-archive
	archive := filepath.Join(dir, "exported.tar")
	s.must("export", "interop:v1", "oci-archive:"+archive+":v1")
	mustRun(t, nil, "skopeo", "inspect", "--raw", "oci-archive:"+archive+":v1")
}

// TestExportImportRoundTrip: export then import gives back the same tree
// (through an ordinary tar layer).
func TestExportImportRoundTrip(t *testing.T) {
	requireRoot(t)
	dir, src, s, _ := smallImage(t, "interop:v1")

	layout := filepath.Join(dir, "exported")
	s.must("export", "interop:v1", "oci:"+layout+":v1")
	s.must("import", "oci:"+layout+":v1", "--tag", "back:v1")
	dest := filepath.Join(dir, "dest")
	s.must("unpack", "back:v1", dest)
	compareTrees(t, snapshot(t, src), snapshot(t, dest), compareOptions{SkipRoot: true})
}
