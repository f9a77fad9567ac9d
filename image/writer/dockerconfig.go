package writer

import (
	"encoding/json"
	"fmt"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DockerConfigOf returns the Docker-only fields (Healthcheck, OnBuild,
// Shell) of an image config's "config" object, which ocispec.Image drops.
func DockerConfigOf(raw []byte) (dockerspec.DockerOCIImageConfigExt, error) {
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &img); err != nil {
		return dockerspec.DockerOCIImageConfigExt{}, fmt.Errorf("parsing image config: %w", err)
	}
	return img.Config.DockerOCIImageConfigExt, nil
}

// hasDocker reports whether any Docker-only field is set.
func hasDocker(ext dockerspec.DockerOCIImageConfigExt) bool {
	return ext.Healthcheck != nil || len(ext.OnBuild) > 0 || len(ext.Shell) > 0
}

// dockerImage is ocispec.Image with the Docker fields in "config", its
// fields in ocispec.Image's order, so that a config without Docker fields
// encodes to the same bytes either way (dockerspec.DockerOCIImage would move
// "config" after "history": every digest would change).
type dockerImage struct {
	Created *time.Time `json:"created,omitempty"`
	Author  string     `json:"author,omitempty"`
	ocispec.Platform
	Config  dockerspec.DockerOCIImageConfig `json:"config,omitempty"`
	RootFS  ocispec.RootFS                  `json:"rootfs"`
	History []ocispec.History               `json:"history,omitempty"`
}

// ConfigJSON is the value an image config blob encodes: cfg, plus ext
// when set (without ext, exactly cfg's encoding).
func ConfigJSON(cfg ocispec.Image, ext dockerspec.DockerOCIImageConfigExt) any {
	return configJSON(cfg, ext)
}

func configJSON(cfg ocispec.Image, ext dockerspec.DockerOCIImageConfigExt) any {
	if !hasDocker(ext) {
		return cfg
	}
	return dockerImage{
		Created:  cfg.Created,
		Author:   cfg.Author,
		Platform: cfg.Platform,
		Config:   dockerspec.DockerOCIImageConfig{ImageConfig: cfg.Config, DockerOCIImageConfigExt: ext},
		RootFS:   cfg.RootFS,
		History:  cfg.History,
	}
}
