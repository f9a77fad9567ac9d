package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/internal/refname"
	"github.com/oci2/oci2/store"
	"github.com/oci2/oci2/store/framesource"
	"github.com/oci2/oci2/store/index"
	"github.com/oci2/oci2/store/local"
)

// storeHandle is the opened local store.
type storeHandle struct {
	*local.Store
}

func (s *storeHandle) Close() {}

// frames reads the frames of the store's images, stored or virtual; the
// chunks of virtual ones are located through the store's index files.
func (s *storeHandle) frames() *framesource.Source {
	return framesource.New(s, nil)
}

// cacheDir is where the writer's files cache lives inside the store.
func (s *storeHandle) cacheDir() string { return filepath.Join(s.Dir(), "oci2", "cache") }

// store opens the store named by --store (or the default) once.
func (a *app) store() (*storeHandle, error) {
	if a.st != nil {
		return a.st, nil
	}
	dir := a.storeDir
	if dir == "" {
		d, err := local.DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	st, err := local.Open(dir)
	if err != nil {
		return nil, err
	}
	a.st = &storeHandle{Store: st}
	return a.st, nil
}

// target is what a NAME|DIGEST argument resolves to: the descriptor a ref
// points at (an image index, usually), or the blob a digest names.
type target struct {
	Name       string // normalized name; empty for a digest
	Descriptor ocispec.Descriptor
}

// resolveTarget resolves a name (normalized via refname) or a digest to the
// descriptor it names. A digest's media type is read from the blob.
func resolveTarget(ctx context.Context, st *storeHandle, arg string) (target, error) {
	ref, err := refname.Parse(arg)
	if err != nil {
		return target{}, usageError{err}
	}
	if ref.Digest == "" {
		desc, err := st.GetRef(ctx, ref.Name)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return target{}, fmt.Errorf("image %s: %w", ref.Name, store.ErrNotFound)
			}
			return target{}, err
		}
		return target{Name: ref.Name, Descriptor: desc}, nil
	}
	desc, err := describeBlob(ctx, st, ref.Digest)
	if err != nil {
		return target{}, err
	}
	return target{Descriptor: desc}, nil
}

// describeBlob builds the descriptor of a stored index or manifest.
func describeBlob(ctx context.Context, st *storeHandle, d digest.Digest) (ocispec.Descriptor, error) {
	b, err := st.ReadBlob(ctx, d, 4<<20)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("blob %s is not an image index or manifest: %w", d, err)
	}
	switch probe.MediaType {
	case ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest:
	default:
		return ocispec.Descriptor{}, fmt.Errorf("blob %s has media type %q, not an image index or manifest", d, probe.MediaType)
	}
	return ocispec.Descriptor{MediaType: probe.MediaType, Digest: d, Size: int64(len(b))}, nil
}

// resolveManifest resolves NAME|DIGEST to one image manifest for platform
// (nil: the host's, or the only one).
func resolveManifest(ctx context.Context, st *storeHandle, arg string, platform *ocispec.Platform) (ocispec.Descriptor, error) {
	ref, err := refname.Parse(arg)
	if err != nil {
		return ocispec.Descriptor{}, usageError{err}
	}
	key := ref.Name
	if ref.Digest != "" {
		key = ref.Digest.String()
	}
	desc, err := reader.Resolve(ctx, st, st, key, platform)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolving %s: %w", arg, err)
	}
	return desc, nil
}

// readJSON reads the verified blob desc names (at most 4 MiB, of desc's
// size) and decodes it into v.
func readJSON(ctx context.Context, st *storeHandle, desc ocispec.Descriptor, v any) error {
	b, err := st.ReadBlob(ctx, desc.Digest, 4<<20)
	if err != nil {
		return err
	}
	if desc.Size != 0 && int64(len(b)) != desc.Size {
		return fmt.Errorf("blob %s: %d bytes, descriptor says %d: %w", desc.Digest, len(b), desc.Size, store.ErrSizeMismatch)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parsing %s: %w", desc.Digest, err)
	}
	return nil
}

// leasedStore opens the store and takes a lease, so that no gc deletes
// what the command reads or is about to name (gc waits for leases).
func (a *app) leasedStore(ctx context.Context) (*storeHandle, func(), error) {
	st, err := a.store()
	if err != nil {
		return nil, nil, err
	}
	release, err := st.Lease(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("leasing store: %w", err)
	}
	return st, release, nil
}

// printIndexStats writes what this process's index scans read to stderr,
// one JSON line prefixed "oci2: index scans: ".
func printIndexStats() {
	b, _ := json.Marshal(index.ProcessScanStats())
	fmt.Fprintf(os.Stderr, "oci2: index scans: %s\n", b)
}
