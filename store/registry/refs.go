package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/oci2/oci2/store"
)

// Refs of a registry repository are tags. A ref named "<repo>:<tag>" (the
// repository's own name) pointing at a manifest or index of the repository
// is the tag itself, readable by every client. Any other ref (another name,
// or a target that is a plain blob) is kept as a small *ref record*: an
// artifact manifest of type ArtifactTypeRef under the tag RefTagPrefix +
// hex(sha256(name))[:40] (or under the tag itself), whose annotations hold
// the name and the whole descriptor. The target is referenced as a layer
// (a blob) or as the subject (a manifest).
const (
	ArtifactTypeRef     = "application/vnd.oci2.ref.v1"
	RefTagPrefix        = "oci2-ref-"
	AnnotationRefName   = "org.oci2.ref.name"
	AnnotationRefTarget = "org.oci2.ref.descriptor"
	mediaTypeEmptyJSON  = "application/vnd.oci.empty.v1+json"
	emptyJSON           = "{}"
	emptyJSONDigest     = digest.Digest("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
	maxRefListWorkers   = 8
)

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// tagFor returns the tag holding ref name and whether name is one of the
// repository's own tags.
func (r *Repo) tagFor(name string) (string, bool) {
	if tag, ok := strings.CutPrefix(name, r.name+":"); ok && tagRE.MatchString(tag) && !strings.HasPrefix(tag, RefTagPrefix) {
		return tag, true
	}
	sum := sha256.Sum256([]byte(name))
	return RefTagPrefix + hex.EncodeToString(sum[:])[:40], false
}

// SetRef points name at desc. The target must be in the repository (a blob
// or a manifest) with desc.Size bytes.
func (r *Repo) SetRef(ctx context.Context, name string, desc ocispec.Descriptor) error {
	if name == "" {
		return errors.New("setting ref: empty name")
	}
	if err := store.CheckDigest(desc.Digest); err != nil {
		return err
	}
	tag, own := r.tagFor(name)
	isBlob, err := r.exists(ctx, desc.Digest, -1)
	if err != nil {
		return fmt.Errorf("setting ref %s: %w", name, err)
	}
	var size int64
	var target []byte // the manifest, when the target is one
	if isBlob {
		info, err := r.Stat(ctx, desc.Digest)
		if err != nil {
			return fmt.Errorf("setting ref %s: %w", name, err)
		}
		size = info.Size
	} else {
		md, b, err := r.GetManifest(ctx, desc.Digest.String())
		if err != nil {
			return fmt.Errorf("setting ref %s: target %w", name, err)
		}
		size, target = md.Size, b
	}
	if size != desc.Size {
		return fmt.Errorf("setting ref %s: target %s has %d bytes, descriptor says %d: %w",
			name, desc.Digest, size, desc.Size, store.ErrSizeMismatch)
	}
	if own && target != nil && IsManifestType(desc.MediaType) {
		_, err := r.PutManifest(ctx, tag, desc.MediaType, target)
		return err
	}
	return r.putRecord(ctx, tag, name, desc, isBlob)
}

// putRecord stores a ref record for name under tag.
func (r *Repo) putRecord(ctx context.Context, tag, name string, desc ocispec.Descriptor, isBlob bool) error {
	if err := r.ensureEmptyConfig(ctx); err != nil {
		return fmt.Errorf("setting ref %s: %w", name, err)
	}
	db, err := json.Marshal(desc)
	if err != nil {
		return err
	}
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactTypeRef,
		Config: ocispec.Descriptor{MediaType: mediaTypeEmptyJSON, Digest: emptyJSONDigest,
			Size: int64(len(emptyJSON)), Data: []byte(emptyJSON)},
		Layers:      []ocispec.Descriptor{},
		Annotations: map[string]string{AnnotationRefName: name, AnnotationRefTarget: string(db)},
	}
	target := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	if isBlob {
		m.Layers = append(m.Layers, target)
	} else {
		m.Subject = &target
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := r.PutManifest(ctx, tag, ocispec.MediaTypeImageManifest, b); err != nil {
		return fmt.Errorf("setting ref %s: %w", name, err)
	}
	return nil
}

func (r *Repo) ensureEmptyConfig(ctx context.Context) error {
	r.emptyOnce.Lock()
	defer r.emptyOnce.Unlock()
	if r.emptyDone {
		return nil
	}
	if err := r.PutBlob(ctx, emptyJSONDigest, []byte(emptyJSON)); err != nil {
		return err
	}
	r.emptyDone = true
	return nil
}

// GetRef returns the descriptor name points at, or ErrNotFound.
func (r *Repo) GetRef(ctx context.Context, name string) (ocispec.Descriptor, error) {
	tag, own := r.tagFor(name)
	got, desc, err := r.readTag(ctx, tag, own)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("ref %s: %w", name, err)
	}
	if got != name {
		return ocispec.Descriptor{}, fmt.Errorf("ref %s: %w", name, store.ErrNotFound)
	}
	return desc, nil
}

// readTag reads the manifest under tag and returns the ref it stands for.
func (r *Repo) readTag(ctx context.Context, tag string, own bool) (string, ocispec.Descriptor, error) {
	md, b, err := r.GetManifest(ctx, tag)
	if err != nil {
		return "", ocispec.Descriptor{}, err
	}
	if name, desc, ok := parseRecord(b); ok {
		return name, desc, nil
	}
	if !own {
		return "", ocispec.Descriptor{}, fmt.Errorf("tag %s is not a ref record: %w", tag, store.ErrNotFound)
	}
	return r.name + ":" + tag, md, nil
}

// parseRecord decodes a ref record.
func parseRecord(b []byte) (string, ocispec.Descriptor, bool) {
	var m ocispec.Manifest
	if json.Unmarshal(b, &m) != nil || m.ArtifactType != ArtifactTypeRef {
		return "", ocispec.Descriptor{}, false
	}
	name := m.Annotations[AnnotationRefName]
	var desc ocispec.Descriptor
	if name == "" || json.Unmarshal([]byte(m.Annotations[AnnotationRefTarget]), &desc) != nil {
		return "", ocispec.Descriptor{}, false
	}
	return name, desc, true
}

// ListRefs returns every ref (every tag of the repository), sorted by name.
func (r *Repo) ListRefs(ctx context.Context) ([]store.Ref, error) {
	tags, err := r.Tags(ctx)
	if err != nil {
		return nil, err
	}
	refs := make([]store.Ref, len(tags))
	ok := make([]bool, len(tags))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxRefListWorkers)
	for i, tag := range tags {
		g.Go(func() error {
			_, own := r.tagFor(r.name + ":" + tag)
			name, desc, err := r.readTag(gctx, tag, own)
			if errors.Is(err, store.ErrNotFound) {
				return nil // deleted meanwhile, or not ours
			}
			if err != nil {
				return fmt.Errorf("listing refs: tag %s: %w", tag, err)
			}
			refs[i], ok[i] = store.Ref{Name: name, Descriptor: desc}, true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := refs[:0]
	for i := range refs {
		if ok[i] {
			out = append(out, refs[i])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteRef removes the tag holding name.
func (r *Repo) DeleteRef(ctx context.Context, name string) error {
	tag, own := r.tagFor(name)
	if own {
		return r.DeleteManifest(ctx, tag)
	}
	// Make sure the record is name's (not a hash collision) before deleting.
	got, _, err := r.readTag(ctx, tag, false)
	if err != nil {
		return fmt.Errorf("ref %s: %w", name, err)
	}
	if got != name {
		return fmt.Errorf("ref %s: %w", name, store.ErrNotFound)
	}
	err = r.DeleteManifest(ctx, tag)
	if errors.Is(err, errors.ErrUnsupported) {
		// No tag deletion: a record is its own manifest, delete it by digest.
		var md ocispec.Descriptor
		if md, err = r.HeadManifest(ctx, tag); err == nil {
			err = r.DeleteManifest(ctx, md.Digest.String())
		}
	}
	return err
}

// ListBlobs is not possible through the distribution spec.
func (r *Repo) ListBlobs(ctx context.Context, fn func(store.Info) error) error {
	return fmt.Errorf("registry %s: listing blobs: %w", r.reg.RegistryStr(), errors.ErrUnsupported)
}

// DeleteBlob is not offered: registries collect garbage themselves.
func (r *Repo) DeleteBlob(ctx context.Context, d digest.Digest) error {
	return fmt.Errorf("registry %s: deleting blobs: %w", r.reg.RegistryStr(), errors.ErrUnsupported)
}

// Lease is not needed: the registry's own garbage collection never removes
// a blob a tagged manifest references.
func (r *Repo) Lease(ctx context.Context) (func(), error) {
	return nil, fmt.Errorf("registry %s: leases: %w", r.reg.RegistryStr(), errors.ErrUnsupported)
}

// Exclusive is not offered (see Lease).
func (r *Repo) Exclusive(ctx context.Context, wait bool) (func(), error) {
	return nil, fmt.Errorf("registry %s: exclusive access: %w", r.reg.RegistryStr(), errors.ErrUnsupported)
}
