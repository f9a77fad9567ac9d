package basesource

import (
	"encoding/json"
	"testing"

	"github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
)

// FrontendConfig must give the Dockerfile frontend a base with content
// (diff_ids, a non-empty history entry) and keep every other field,
// Docker's own included.
func TestFrontendConfig(t *testing.T) {
	raw := []byte(`{"architecture":"amd64","os":"linux","os.features":["org.oci2.v1"],
	"created":"2026-01-01T00:00:00Z",
	"config":{"Env":["K=V"],"WorkingDir":"/srv","User":"1000","Shell":["/bin/bash","-c"],
	"OnBuild":["RUN echo hi"],"Healthcheck":{"Test":["CMD","true"]},"StopSignal":"SIGINT"},
	"rootfs":{"type":"layers","diff_ids":[]},
	"history":[{"created_by":"oci2 create"}],"x-extra":1}`)
	var root format.ChunkID
	root[0] = 1
	out, err := FrontendConfig(raw, root, "t/base@sha256:00")
	if err != nil {
		t.Fatal(err)
	}
	var img v1.DockerOCIImage
	if err := json.Unmarshal(out, &img); err != nil {
		t.Fatal(err)
	}
	if len(img.RootFS.DiffIDs) != 1 || img.RootFS.DiffIDs[0].String() != root.String() {
		t.Errorf("diff_ids %v, want [%s]", img.RootFS.DiffIDs, root)
	}
	var nonEmpty int
	for _, h := range img.History {
		if !h.EmptyLayer {
			nonEmpty++
			if h.Comment != HistoryComment {
				t.Errorf("layer history entry %+v", h)
			}
		}
	}
	if nonEmpty != 1 || len(img.History) != 2 {
		t.Errorf("history %+v: want the base's entry (empty) and one layer entry", img.History)
	}
	c := img.Config
	if c.WorkingDir != "/srv" || c.User != "1000" || c.StopSignal != "SIGINT" || len(c.Env) != 1 ||
		len(c.Shell) != 2 || len(c.OnBuild) != 1 || c.Healthcheck == nil {
		t.Errorf("config fields lost: %+v", c)
	}
	if len(img.OSFeatures) != 0 {
		t.Errorf("os.features kept: %v", img.OSFeatures)
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	if m["x-extra"] == nil {
		t.Errorf("unknown field dropped: %s", out)
	}
}

func TestFrontendConfigBad(t *testing.T) {
	if _, err := FrontendConfig([]byte(`{"history":"x"}`), format.ChunkID{}, "r"); err == nil {
		t.Error("a config with a string history was accepted")
	}
}
