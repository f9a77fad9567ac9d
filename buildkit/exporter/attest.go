package exporter

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	intoto "github.com/in-toto/in-toto-golang/in_toto"
	bkexporter "github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/exporter/attestation"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver/result"
	attestationTypes "github.com/moby/buildkit/util/attestation"
	"github.com/moby/buildkit/util/progress"
	"github.com/moby/buildkit/util/purl"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	packageurl "github.com/package-url/packageurl-go"

	"github.com/oci2/oci2/image/writer"
	"github.com/oci2/oci2/store"
)

// AttestationPlatform is the platform of attestation manifests in an
// image index, as BuildKit's image exporter writes it: clients that pick a
// platform skip it.
var AttestationPlatform = ocispec.Platform{OS: "unknown", Architecture: "unknown"}

// annotationPredicateType names the in-toto predicate of an attestation
// layer (BuildKit's spelling).
const annotationPredicateType = "in-toto.io/predicate-type"

// writeAttestations writes, for every platform of plats that has
// attestations (provenance, SBOM), an attestation manifest the way
// BuildKit's image exporter does (exporter/containerimage, commitAttestationsManifest):
// one in-toto statement per layer whose subject is the platform's manifest,
// a config for unknown/unknown, and a descriptor annotated with
// vnd.docker.reference.type=attestation-manifest and the manifest's digest.
// manifests are the platforms' image manifests, in plats' order. The
// attestations are not part of the image: its manifests, and so the digest
// of a build without attestations, do not change.
func (i *instance) writeAttestations(ctx context.Context, src *bkexporter.Source, plats exptypes.Platforms,
	manifests []ocispec.Descriptor, sessionID string) ([]ocispec.Descriptor, error) {
	var out []ocispec.Descriptor
	for j, p := range plats.Platforms {
		atts := attestation.Filter(src.Attestations[p.ID], nil, map[string][]byte{
			// inline-only attestations are meant for the exporter's
			// caller (the local exporter), never for an image
			result.AttestationInlineOnlyKey: []byte(strconv.FormatBool(true)),
		})
		if len(atts) == 0 {
			continue
		}
		s := session.NewGroup(sessionID)
		atts, err := attestation.Unbundle(ctx, s, atts)
		if err != nil {
			return nil, fmt.Errorf("oci2 exporter: attestations of %s: %w", p.ID, err)
		}
		target := manifests[j]
		subjects, err := i.subjects(target.Digest, &p.Platform)
		if err != nil {
			return nil, err
		}
		// The image exporter also rewrites SPDX file entries to name the
		// layer a file came from; an oci2 image has no layers, so the
		// scanner's document is kept as it is.
		stmts, err := attestation.MakeInTotoStatements(ctx, s, atts, subjects)
		if err != nil {
			return nil, fmt.Errorf("oci2 exporter: attestations of %s: %w", p.ID, err)
		}
		done := progress.OneOff(ctx, "writing attestation manifest for "+p.ID)
		desc, err := writeAttestationManifest(ctx, i.exp.opt.State.Store, target, stmts)
		if err := done(err); err != nil {
			return nil, fmt.Errorf("oci2 exporter: attestations of %s: %w", p.ID, err)
		}
		out = append(out, desc)
	}
	return out, nil
}

// subjects are the statements' default subjects: every name of the export
// as a package URL, with the platform manifest's digest.
func (i *instance) subjects(d digest.Digest, p *ocispec.Platform) ([]intoto.Subject, error) {
	var subjects []intoto.Subject
	for _, name := range i.attrs.Names {
		pl, err := purl.RefToPURL(packageurl.TypeDocker, name, p)
		if err != nil {
			return nil, fmt.Errorf("oci2 exporter: subject %s: %w", name, err)
		}
		subjects = append(subjects, intoto.Subject{Name: pl, Digest: result.ToDigestMap(d)})
	}
	return subjects, nil
}

// writeAttestationManifest stores the statements, their config and the
// manifest over them, and returns the manifest's index descriptor.
func writeAttestationManifest(ctx context.Context, st store.Writer, target ocispec.Descriptor,
	stmts []intoto.Statement) (ocispec.Descriptor, error) {
	layers := make([]ocispec.Descriptor, len(stmts))
	diffIDs := make([]digest.Digest, len(stmts))
	for k, stmt := range stmts {
		b, err := json.Marshal(stmt)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("encoding statement: %w", err)
		}
		d := digest.FromBytes(b)
		if err := st.PutBlob(ctx, d, b); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("storing statement: %w", err)
		}
		layers[k] = ocispec.Descriptor{
			MediaType:   intoto.PayloadType,
			Digest:      d,
			Size:        int64(len(b)),
			Annotations: map[string]string{annotationPredicateType: stmt.PredicateType},
		}
		diffIDs[k] = d // uncompressed: the diff ID is the blob's digest
	}
	cfg := ocispec.Image{Platform: AttestationPlatform, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}}
	cfgDesc, err := writer.PutJSON(ctx, st, ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("storing config: %w", err)
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    layers,
	}
	desc, err := writer.PutJSON(ctx, st, ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("storing manifest: %w", err)
	}
	plat := AttestationPlatform
	desc.Platform = &plat
	desc.Annotations = map[string]string{
		attestationTypes.DockerAnnotationReferenceType:   attestationTypes.DockerAnnotationReferenceTypeDefault,
		attestationTypes.DockerAnnotationReferenceDigest: target.Digest.String(),
	}
	return desc, nil
}
