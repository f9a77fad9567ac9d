package exporter

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/image/writer"
)

// dockerConfig returns the Docker-only fields (Healthcheck, OnBuild, Shell)
// of platform p's image config, which imageConfig's ocispec.Image drops:
// a base's ONBUILD, SHELL and HEALTHCHECK, or the Dockerfile's own.
func dockerConfig(meta map[string][]byte, p exptypes.Platform) (dockerspec.DockerOCIImageConfigExt, error) {
	dt := exptypes.ParseKey(meta, exptypes.ExporterImageConfigKey, &p)
	if len(dt) == 0 {
		return dockerspec.DockerOCIImageConfigExt{}, nil
	}
	ext, err := writer.DockerConfigOf(dt)
	if err != nil {
		return ext, fmt.Errorf("oci2 exporter: image config for %s: %w", p.ID, err)
	}
	return ext, nil
}

// imageConfig returns the image config of platform p from the result's
// containerimage.config metadata (per platform, else global), as the stock
// image exporter reads it. Without one (a raw LLB build) the config holds
// only the platform.
//
// The history is kept with every entry marked empty_layer: an OCIv2 image
// has no layers, and rootfs.diff_ids is empty (SPEC.md §6.3), so a history
// claiming layers would contradict it. With an epoch, created times later
// than it are clamped to it, except those of the base image's history, as
// the stock exporter does (moby/buildkit#4614).
func imageConfig(meta map[string][]byte, p exptypes.Platform, ep *time.Time) (ocispec.Image, error) {
	var img ocispec.Image
	if dt := exptypes.ParseKey(meta, exptypes.ExporterImageConfigKey, &p); len(dt) > 0 {
		if err := json.Unmarshal(dt, &img); err != nil {
			return img, fmt.Errorf("oci2 exporter: invalid image config for %s: %w", p.ID, err)
		}
	}
	if img.OS == "" {
		img.OS = p.Platform.OS
	}
	if img.Architecture == "" {
		img.Architecture = p.Platform.Architecture
		img.Variant = p.Platform.Variant
	}
	if img.OS != p.Platform.OS || img.Architecture != p.Platform.Architecture {
		return img, fmt.Errorf("oci2 exporter: image config of %s is for %s/%s", p.ID, img.OS, img.Architecture)
	}

	var base ocispec.Image
	if dt := exptypes.ParseKey(meta, exptypes.ExporterImageBaseConfigKey, &p); len(dt) > 0 {
		_ = json.Unmarshal(dt, &base) // only used to keep base history times
	}
	diverged := false
	for j := range img.History {
		h := &img.History[j]
		if ep != nil {
			if !diverged && j < len(base.History) && reflect.DeepEqual(*h, base.History[j]) {
				h.EmptyLayer = true
				continue
			}
			diverged = true
			if h.Created == nil || h.Created.After(*ep) {
				t := *ep
				h.Created = &t
			}
		}
		h.EmptyLayer = true
	}
	if img.Created == nil {
		for _, h := range img.History {
			if h.Created != nil {
				t := *h.Created
				img.Created = &t
			}
		}
	}
	if ep != nil && img.Created != nil && img.Created.After(*ep) {
		t := *ep
		img.Created = &t
	}
	return img, nil
}
