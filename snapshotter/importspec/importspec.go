package importspec

import (
	"fmt"

	"github.com/opencontainers/go-digest"
)

// LabelImage names, on a snapshot, the OCIv2 image (a manifest digest of
// the store) it is the root filesystem of. containerd passes on only
// labels under containerd.io/snapshot/ to a snapshotter.
const LabelImage = "containerd.io/snapshot/oci2.image"

// LabelSource names, on an image snapshot, the registry repository
// (host/path, no tag or digest) its data is fetched from when the store
// lacks it: the mount is then lazy, reading frames from the registry as
// containers read files. Without it the store must hold the whole image.
const LabelSource = "containerd.io/snapshot/oci2.source"

// MediaTypeRootLayer is the one layer of an imported image's manifest: the
// OCIv2 image's whole tree, never fetched (the snapshotter mounts it). Its
// prefix is what containerd's IsLayerType takes as a layer.
const MediaTypeRootLayer = "application/vnd.oci.image.layer.oci2.root.v1"

// Image is a containerd image to create for an OCIv2 image: the
// manifest and config blobs go to containerd's content store, the
// snapshot ChainID is prepared with Labels, and Name points at Manifest.
type Image struct {
	Name     string            `json:"name"`
	Manifest []byte            `json:"manifest"` // exact bytes: their digest is the image's target
	Config   []byte            `json:"config"`
	ChainID  digest.Digest     `json:"chainID"` // of the one layer: its diff ID
	Source   digest.Digest     `json:"source"`  // the OCIv2 manifest
	Labels   map[string]string `json:"labels"`  // LabelImage and, when lazy, LabelSource
}

// RootChainID is the diff ID (and chain ID) of the root layer of the
// OCIv2 image whose manifest is m: one image has one snapshot, another
// image another.
func RootChainID(m digest.Digest) digest.Digest {
	return digest.FromBytes([]byte("oci2-root\x00" + m.String()))
}

// Validate checks what a writer of im relies on, so a malformed
// description is refused before anything is written to containerd.
func (im *Image) Validate() error {
	switch {
	case im.Name == "":
		return fmt.Errorf("import description: no image name")
	case len(im.Manifest) == 0 || len(im.Config) == 0:
		return fmt.Errorf("import description of %s: no manifest or config", im.Name)
	}
	if err := im.Source.Validate(); err != nil {
		return fmt.Errorf("import description of %s: source %q: %w", im.Name, im.Source, err)
	}
	if im.ChainID != RootChainID(im.Source) {
		return fmt.Errorf("import description of %s: chain ID %s is not the root layer's of %s", im.Name, im.ChainID, im.Source)
	}
	if im.Labels[LabelImage] != im.Source.String() {
		return fmt.Errorf("import description of %s: label %s %q is not the source %s", im.Name, LabelImage, im.Labels[LabelImage], im.Source)
	}
	return nil
}
