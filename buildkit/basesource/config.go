package basesource

import (
	"encoding/json"
	"fmt"

	"github.com/oci2/oci2/format"
)

// HistoryComment marks the history entry FrontendConfig adds.
const HistoryComment = "org.oci2.base"

// FrontendConfig returns the image config raw as BuildKit's frontends must
// see it to take the image for a base with content:
//   - rootfs.diff_ids = [root]: the Dockerfile frontend takes a config with
//     no diff_ids and no non-empty history entry for scratch
//     (dockerfile2llb/convert.go, isScratch), and stock exporters align
//     history with layers (one layer: the base);
//   - one non-empty history entry naming the base;
//   - no os.features: State.WithImageConfig copies the config's platform
//     into LLB, and a platform asking for org.oci2.v1 matches nothing stock.
//
// Every other field is kept as raw JSON, Docker's (Healthcheck, OnBuild,
// Shell) included.
func FrontendConfig(raw []byte, root format.ChunkID, ref string) ([]byte, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("parsing image config: %w", err)
	}
	var rootfs map[string]any
	if r, ok := cfg["rootfs"]; ok {
		if err := json.Unmarshal(r, &rootfs); err != nil {
			return nil, fmt.Errorf("parsing image config rootfs: %w", err)
		}
	}
	if rootfs == nil {
		rootfs = map[string]any{}
	}
	rootfs["type"] = "layers"
	rootfs["diff_ids"] = []string{root.String()}
	var history []map[string]any
	if h, ok := cfg["history"]; ok && string(h) != "null" {
		if err := json.Unmarshal(h, &history); err != nil {
			return nil, fmt.Errorf("parsing image config history: %w", err)
		}
	}
	entry := map[string]any{"created_by": "oci2 base " + ref, "comment": HistoryComment}
	if c, ok := cfg["created"]; ok {
		entry["created"] = c
	}
	// Entries of the base's own history describe no tar layer: mark them
	// empty, so the one entry above stands for the one layer.
	for _, e := range history {
		e["empty_layer"] = true
	}
	history = append(history, entry)
	delete(cfg, "os.features")
	for k, v := range map[string]any{"rootfs": rootfs, "history": history} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		cfg[k] = b
	}
	return json.Marshal(cfg)
}
