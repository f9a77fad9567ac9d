package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/pelletier/go-toml/v2"
)

// Config is the [oci2] table of buildkitd.toml:
//
//	[oci2]
//	  store = "/var/lib/buildkit/oci2"  # default: <root>/oci2
//	  keep-bytes = "10GB"               # as [[worker.oci.gcpolicy]] keepBytes
//	  keep-duration = "48h"             # as gcpolicy keepDuration
//
// Upstream's loader ignores unknown tables, so it never sees this one; we
// read the same file a second time, strictly.
type Config struct {
	Store        string           `toml:"store"`
	KeepBytes    config.DiskSpace `toml:"keep-bytes"`
	KeepDuration config.Duration  `toml:"keep-duration"`
}

// LoadConfig reads the [oci2] table of the buildkitd.toml at path; a
// missing file is an empty config, as upstream treats it. Unknown keys in
// [oci2] are errors (other tables are upstream's business).
func LoadConfig(path string) (Config, error) {
	var file struct {
		OCI2 map[string]any `toml:"oci2"`
	}
	dt, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("loading %s: %w", path, err)
	}
	if err := toml.Unmarshal(dt, &file); err != nil {
		return Config{}, fmt.Errorf("loading %s: %w", path, err)
	}
	if file.OCI2 == nil {
		return Config{}, nil
	}
	// Re-encode just the table and decode it strictly.
	tbl, err := toml.Marshal(file.OCI2)
	if err != nil {
		return Config{}, fmt.Errorf("loading %s: [oci2]: %w", path, err)
	}
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(tbl))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("loading %s: [oci2] (valid keys: store, keep-bytes, keep-duration): %w", path, err)
	}
	return c, nil
}
