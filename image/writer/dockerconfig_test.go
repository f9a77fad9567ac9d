package writer

import (
	"encoding/json"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Without Docker fields the config encodes as ocispec.Image does (digests
// unchanged); with them, they are kept in "config" and read back.
func TestConfigJSONDocker(t *testing.T) {
	created := time.Unix(1700000000, 0).UTC()
	cfg := ocispec.Image{Created: &created, Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config:  ocispec.ImageConfig{Env: []string{"A=B"}, WorkingDir: "/w"},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
		History: []ocispec.History{{CreatedBy: "x", EmptyLayer: true}}}
	plain, _ := json.Marshal(cfg)
	same, _ := json.Marshal(configJSON(cfg, dockerspec.DockerOCIImageConfigExt{}))
	if string(plain) != string(same) {
		t.Fatalf("without Docker fields:\n%s\nwant\n%s", same, plain)
	}
	ext := dockerspec.DockerOCIImageConfigExt{Shell: []string{"/bin/bash", "-c"}, OnBuild: []string{"RUN x"},
		Healthcheck: &dockerspec.HealthcheckConfig{Test: []string{"CMD", "true"}, Retries: 2}}
	raw, _ := json.Marshal(configJSON(cfg, ext))
	got, err := DockerConfigOf(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Shell) != 2 || len(got.OnBuild) != 1 || got.Healthcheck == nil || got.Healthcheck.Retries != 2 {
		t.Errorf("read back %+v from %s", got, raw)
	}
	var back ocispec.Image
	if err := json.Unmarshal(raw, &back); err != nil || back.Config.WorkingDir != "/w" || len(back.History) != 1 {
		t.Errorf("OCI fields: %+v, %v", back, err)
	}
}
