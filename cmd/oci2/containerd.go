package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/oci2/oci2/snapshotter/importspec"
)

type containerdFlags struct {
	address     string
	namespace   string
	snapshotter string
	platform    string
	fromReg     bool
	remote      remoteFlags
}

func (a *app) containerdCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "containerd",
		Short: "Make OCIv2 images runnable by containerd (with oci2-snapshotter)",
	}
	var f containerdFlags
	imp := &cobra.Command{
		Use:   "import NAME|DIGEST|REF",
		Short: "Create a containerd image that runs an OCIv2 image through oci2-snapshotter",
		Long: `Import the image NAME|DIGEST|REF into containerd without unpacking it:
containerd's content store gets a manifest and the image's config whose
one layer is the OCIv2 image's tree, the snapshotter (--snapshotter, an
oci2-snapshotter serving this store) mounts the image as that layer's
committed snapshot, and containerd's image NAME points at the manifest, so
'ctr run --snapshotter oci2 NAME ID' starts it.

A name the store lacks (any REF with --registry) is imported straight from
its registry, as 'oci2 mount' mounts it: its metadata is fetched into the
store, and the snapshotter's mount fetches file data from the registry as
containers read it (with the snapshotter's credentials, its
DOCKER_CONFIG; this command uses its own, as 'oci2 pull').

containerd's side of the import is made by 'oci2-snapshotter import'
(next to this binary, else on $PATH), which gets the image's description
on stdin: containerd's client is linked into it, not into oci2.`,
		Args: exactArgs(1, "NAME|DIGEST|REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.containerdImport(cmd.Context(), f, args[0])
		},
	}
	imp.Flags().StringVar(&f.address, "address", "/run/containerd/containerd.sock", "containerd's socket")
	imp.Flags().StringVar(&f.namespace, "namespace", "default", "containerd namespace")
	imp.Flags().StringVar(&f.snapshotter, "snapshotter", "oci2", "containerd's name of the oci2-snapshotter proxy plugin")
	imp.Flags().StringVar(&f.platform, "platform", "", "platform os/arch[/variant] of a multi-platform image")
	imp.Flags().BoolVar(&f.fromReg, "registry", false, "import REF from its registry (lazily) even when the store has the name")
	f.remote.add(imp, false)
	cmd.AddCommand(imp)
	return cmd
}

func (a *app) containerdImport(ctx context.Context, f containerdFlags, arg string) error {
	plat, err := parsePlatform(f.platform)
	if err != nil {
		return err
	}
	bin, err := snapshotterBinary()
	if err != nil {
		return err
	}
	im, err := a.importedImage(ctx, f, arg, plat)
	if err != nil {
		return err
	}
	desc, err := json.Marshal(im)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "import", "--address", f.address, "--namespace", f.namespace, "--snapshotter", f.snapshotter)
	cmd.Stdin = bytes.NewReader(desc)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s import (containerd's side of the import): %w", bin, err)
	}
	return nil
}

// snapshotterBinary finds oci2-snapshotter, which holds containerd's
// client for `oci2 containerd import`: next to this binary, else on $PATH.
func snapshotterBinary() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "oci2-snapshotter")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("oci2-snapshotter")
	if err != nil {
		return "", fmt.Errorf("oci2 containerd import runs oci2-snapshotter, which is neither next to oci2 nor on $PATH: %w", err)
	}
	return p, nil
}

// importedImage reads the store's image arg and makes its containerd
// manifest and config: the image's config with one diff ID, that of the
// root layer, derived from the OCIv2 manifest digest (so one image has one
// snapshot, and another image another).
func (a *app) importedImage(ctx context.Context, f containerdFlags, arg string, plat *ocispec.Platform) (*importspec.Image, error) {
	st, release, err := a.leasedStore(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	img, lazy, err := openOrLazy(ctx, st, arg, plat, f.fromReg, f.remote)
	if err != nil {
		return nil, err
	}
	md := img.Descriptor
	im := &importspec.Image{Name: arg, Source: md.Digest, ChainID: importspec.RootChainID(md.Digest),
		Labels: map[string]string{importspec.LabelImage: md.Digest.String()}}
	if lazy != nil {
		named, err := reference.ParseNormalizedNamed(arg)
		if err != nil {
			return nil, fmt.Errorf("parsing reference %q: %w", arg, err)
		}
		im.Labels[importspec.LabelSource] = named.Name()
	}
	cfg := img.Config
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{im.ChainID}}
	if im.Config, err = json.Marshal(cfg); err != nil {
		return nil, err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(im.Config), Size: int64(len(im.Config))},
		Layers: []ocispec.Descriptor{{
			MediaType:   importspec.MediaTypeRootLayer,
			Digest:      md.Digest,
			Size:        md.Size,
			Annotations: im.Labels,
		}},
	}
	m.SchemaVersion = 2
	if im.Manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return im, nil
}
