package main

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/image/walk"
)

// inspectOutput is what `inspect` prints.
type inspectOutput struct {
	Name               string             `json:"name,omitempty"`
	Digest             string             `json:"digest"` // what the name points at
	Index              *ocispec.Index     `json:"index,omitempty"`
	ManifestDescriptor ocispec.Descriptor `json:"manifest_descriptor"`
	Manifest           ocispec.Manifest   `json:"manifest"`
	Config             ocispec.Image      `json:"config"`
	Root               string             `json:"root"`
	Packs              []packInfo         `json:"packs"`
	Stats              imageStats         `json:"stats"`
	// Attestations are the index's attestation manifests (provenance,
	// SBOM), as BuildKit lists them: platform unknown/unknown.
	Attestations []attestationInfo `json:"attestations,omitempty"`
}

// attestationInfo is one attestation manifest of an index.
type attestationInfo struct {
	Manifest  string             `json:"manifest"`
	Reference string             `json:"reference"` // the image manifest it is about
	Layers    []attestationLayer `json:"layers"`
}

type attestationLayer struct {
	PredicateType string `json:"predicate_type"`
	Digest        string `json:"digest"`
	Size          int64  `json:"size"`
}

type packInfo struct {
	Type      string `json:"type"` // "tree" or "data"
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	Index     string `json:"index"`
	IndexSize int64  `json:"index_size"`
	Frames    int    `json:"frames"`
	Chunks    int    `json:"chunks"`
	RawBytes  uint64 `json:"raw_bytes"`
}

// imageStats are counted by walking the image's tree.
type imageStats struct {
	Entries      int64 `json:"entries"`
	Dirs         int64 `json:"dirs"`
	Files        int64 `json:"files"`
	Symlinks     int64 `json:"symlinks"`
	Hardlinks    int64 `json:"hardlinks"`
	Other        int64 `json:"other"` // devices, fifos
	LogicalBytes int64 `json:"logical_bytes"`
	TreeObjects  int64 `json:"tree_objects"`
	DataChunks   int64 `json:"data_chunks"`
	Frames       int64 `json:"frames"`
	Packs        int64 `json:"packs"`
	StoredBytes  int64 `json:"stored_bytes"` // size of all packs
}

func (a *app) inspectCmd() *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:   "inspect [--platform os/arch] NAME|DIGEST",
		Short: "Print an image's index, manifest, config, packs and stats as JSON",
		Args:  exactArgs(1, "NAME|DIGEST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.inspect(cmd.Context(), args[0], platform)
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "platform os/arch[/variant] of a multi-platform image")
	return cmd
}

func (a *app) inspect(ctx context.Context, arg, platform string) error {
	plat, err := parsePlatform(platform)
	if err != nil {
		return err
	}
	st, err := a.store()
	if err != nil {
		return err
	}
	t, err := resolveTarget(ctx, st, arg)
	if err != nil {
		return err
	}
	out := inspectOutput{Name: t.Name, Digest: t.Descriptor.Digest.String(), Packs: []packInfo{}}
	if t.Descriptor.MediaType == ocispec.MediaTypeImageIndex {
		var idx ocispec.Index
		if err := readJSON(ctx, st, t.Descriptor, &idx); err != nil {
			return err
		}
		out.Index = &idx
		if out.Attestations, err = attestationsOf(ctx, st, &idx); err != nil {
			return err
		}
	}
	md, err := resolveManifest(ctx, st, arg, plat)
	if err != nil {
		return err
	}
	img, err := reader.Open(ctx, st, md)
	if err != nil {
		return err
	}
	out.ManifestDescriptor = md
	out.Manifest, out.Config, out.Root = img.Manifest, img.Config, img.Root.String()
	for _, g := range []struct {
		typ   string
		packs []reader.Pack
	}{{"tree", img.TreePacks}, {"data", img.DataPacks}} {
		for _, p := range g.packs {
			pi := packInfo{
				Type: g.typ, Digest: p.Descriptor.Digest.String(), Size: p.Descriptor.Size,
				Index: p.IndexDescriptor.Digest.String(), IndexSize: p.IndexDescriptor.Size,
				Frames: len(p.Index.Frames),
			}
			for i := range p.Index.Frames {
				pi.Chunks += len(p.Index.Frames[i].Chunks)
				pi.RawBytes += p.Index.Frames[i].RawSize()
			}
			out.Packs = append(out.Packs, pi)
			out.Stats.Packs++
			out.Stats.Frames += int64(pi.Frames)
			out.Stats.StoredBytes += pi.Size
			if g.typ == "tree" {
				out.Stats.TreeObjects += int64(pi.Chunks)
			} else {
				out.Stats.DataChunks += int64(pi.Chunks)
			}
		}
	}
	cr := reader.NewChunkReader(img, st.frames())
	s := &out.Stats
	err = reader.Walk(ctx, cr, img.Root, reader.DefaultLimits, func(path string, e *format.Entry) error {
		if path == "" {
			return nil // the root wrapper's entry: the root directory itself
		}
		s.Entries++
		switch e.Type {
		case format.TypeDir:
			s.Dirs++
		case format.TypeReg:
			s.Files++
			s.LogicalBytes += int64(e.Size)
		case format.TypeSymlink:
			s.Symlinks++
		case format.TypeHardlink:
			s.Hardlinks++
		default:
			s.Other++
		}
		return nil
	})
	if err != nil {
		return err
	}
	return printJSON(out)
}

// attestationsOf reads the attestation manifests idx lists.
func attestationsOf(ctx context.Context, st *storeHandle, idx *ocispec.Index) ([]attestationInfo, error) {
	var out []attestationInfo
	for _, d := range idx.Manifests {
		if !walk.IsAttestation(d) {
			continue
		}
		var m ocispec.Manifest
		if err := readJSON(ctx, st, d, &m); err != nil {
			return nil, fmt.Errorf("attestation manifest %s: %w", d.Digest, err)
		}
		a := attestationInfo{Manifest: d.Digest.String(), Reference: d.Annotations[annotationReferenceDigest], Layers: []attestationLayer{}}
		for _, l := range m.Layers {
			a.Layers = append(a.Layers, attestationLayer{
				PredicateType: l.Annotations["in-toto.io/predicate-type"], Digest: l.Digest.String(), Size: l.Size,
			})
		}
		out = append(out, a)
	}
	return out, nil
}

// annotationReferenceDigest is BuildKit's annotation naming the manifest an
// attestation manifest is about.
const annotationReferenceDigest = "vnd.docker.reference.digest"
