package basesource

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/internal/refname"
	"github.com/oci2/oci2/store"
)

// Store is what a base is read from: the daemon's oci2 store.
type Store interface {
	store.Reader
	store.Refs
}

// Base is an OCIv2 image of the store chosen as a build's base.
type Base struct {
	Ref    string        // the reference asked for
	Name   string        // its normalized name ("" for a bare digest)
	Pin    digest.Digest // what the reference resolved to: the index, or the manifest given by digest
	Image  *reader.Image // the platform's manifest, opened
	Config []byte        // the image config as a frontend sees it (see FrontendConfig)
}

// Root is the digest of the image's root tree: its content.
func (b *Base) Root() format.ChunkID { return b.Image.Root }

// Lookup finds ref in st: by name (normalized: "busybox" is
// docker.io/library/busybox:latest), or by the digest of an image index or
// manifest (a pinned "name@sha256:..." is looked up by its digest alone:
// content addressing makes the name irrelevant). It returns an error
// wrapping store.ErrNotFound when the store lacks it, reader.ErrNotOCI2
// when the manifest is not an OCIv2 one.
func Lookup(ctx context.Context, st Store, ref string, platform *ocispec.Platform) (*Base, error) {
	r, err := refname.Parse(ref)
	if err != nil {
		return nil, err
	}
	key := r.Name
	if r.Digest != "" {
		key = r.Digest.String()
	}
	var pin digest.Digest
	if r.Digest != "" {
		pin = r.Digest
	} else {
		desc, err := st.GetRef(ctx, r.Name)
		if err != nil {
			return nil, fmt.Errorf("oci2 store: %s: %w", ref, err)
		}
		pin = desc.Digest
	}
	md, err := reader.Resolve(ctx, st, st, key, platform)
	if err != nil {
		return nil, fmt.Errorf("oci2 store: %w", err)
	}
	img, err := reader.Open(ctx, st, md)
	if err != nil {
		return nil, fmt.Errorf("oci2 store: opening %s: %w", ref, err)
	}
	raw, err := st.ReadBlob(ctx, img.Manifest.Config.Digest, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("oci2 store: config of %s: %w", ref, err)
	}
	cfg, err := FrontendConfig(raw, img.Root, r.String()+"@"+pin.String())
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", ref, err)
	}
	return &Base{Ref: ref, Name: r.Name, Pin: pin, Image: img, Config: cfg}, nil
}

// maxConfigSize bounds an image config read into memory.
const maxConfigSize = 4 << 20
