package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	leasesapi "github.com/containerd/containerd/api/services/leases/v1"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/core/content"
	contentproxy "github.com/containerd/containerd/v2/core/content/proxy"
	"github.com/containerd/containerd/v2/core/leases"
	leaseproxy "github.com/containerd/containerd/v2/core/leases/proxy"
	"github.com/containerd/containerd/v2/core/snapshots"
	snapshotproxy "github.com/containerd/containerd/v2/core/snapshots/proxy"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/snapshotter"
)

// mediaTypeRootLayer is the one layer of an imported image's manifest: the
// OCIv2 image's whole tree, never fetched (the snapshotter mounts it). Its
// prefix is what containerd's IsLayerType takes as a layer.
const mediaTypeRootLayer = "application/vnd.oci.image.layer.oci2.root.v1"

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
DOCKER_CONFIG; this command uses its own, as 'oci2 pull').`,
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

// importedImage is what containerd gets for an OCIv2 image.
type importedImage struct {
	manifest, config []byte
	chainID          digest.Digest // of the one layer: its diff ID
	source           digest.Digest // the OCIv2 manifest
	repo             string        // its registry repository when lazy
}

func (a *app) containerdImport(ctx context.Context, f containerdFlags, arg string) error {
	plat, err := parsePlatform(f.platform)
	if err != nil {
		return err
	}
	im, err := a.importedImage(ctx, f, arg, plat)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient("unix://"+f.address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("containerd at %s: %w", f.address, err)
	}
	defer conn.Close()
	ctx = namespaces.WithNamespace(ctx, f.namespace)
	// A lease keeps what is written from containerd's gc until the image
	// record names it.
	lm := leaseproxy.NewLeaseManager(leasesapi.NewLeasesClient(conn))
	lease, err := lm.Create(ctx, leases.WithRandomID(), leases.WithExpiration(time.Hour))
	if err != nil {
		return fmt.Errorf("containerd at %s: lease: %w", f.address, errgrpc.ToNative(err))
	}
	defer lm.Delete(context.WithoutCancel(ctx), lease)
	ctx = leases.WithLease(ctx, lease.ID)
	cs := contentproxy.NewContentStore(contentapi.NewContentClient(conn))
	cfg := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(im.config), Size: int64(len(im.config))}
	// gc labels: the config keeps the snapshot, the manifest the config.
	if err := writeBlob(ctx, cs, cfg, im.config, map[string]string{
		"containerd.io/gc.ref.snapshot." + f.snapshotter: im.chainID.String(),
	}); err != nil {
		return err
	}
	man := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(im.manifest), Size: int64(len(im.manifest))}
	if err := writeBlob(ctx, cs, man, im.manifest, map[string]string{
		"containerd.io/gc.ref.content.config": cfg.Digest.String(),
	}); err != nil {
		return err
	}
	sn := snapshotproxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), f.snapshotter)
	if err := prepareImageSnapshot(ctx, sn, f.snapshotter, im); err != nil {
		return err
	}
	if err := putImage(ctx, imagesapi.NewImagesClient(conn), arg, man); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "imported %s (oci2 manifest %s) as containerd image %s, snapshot %s\n", arg, im.source, man.Digest, im.chainID)
	return nil
}

// putImage creates or updates containerd's image name with target man.
func putImage(ctx context.Context, c imagesapi.ImagesClient, name string, man ocispec.Descriptor) error {
	rec := &imagesapi.Image{Name: name, Target: &types.Descriptor{
		MediaType: man.MediaType, Digest: man.Digest.String(), Size: man.Size,
	}}
	_, err := c.Create(ctx, &imagesapi.CreateImageRequest{Image: rec})
	if err = errgrpc.ToNative(err); errdefs.IsAlreadyExists(err) {
		_, err = c.Update(ctx, &imagesapi.UpdateImageRequest{Image: rec,
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"target"}}})
		err = errgrpc.ToNative(err)
	}
	if err != nil {
		return fmt.Errorf("containerd image %s: %w", name, err)
	}
	return nil
}

// importedImage reads the store's image arg and makes its containerd
// manifest and config: the image's config with one diff ID, that of the
// root layer, derived from the OCIv2 manifest digest (so one image has one
// snapshot, and another image another).
func (a *app) importedImage(ctx context.Context, f containerdFlags, arg string, plat *ocispec.Platform) (*importedImage, error) {
	st, release, err := a.leasedStore(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	md, lazy, err := resolveOrLazy(ctx, st, arg, plat, f.fromReg, f.remote)
	if err != nil {
		return nil, err
	}
	img, err := reader.Open(ctx, st, md)
	if err != nil {
		return nil, err
	}
	im := &importedImage{source: md.Digest}
	if lazy != nil {
		named, err := reference.ParseNormalizedNamed(arg)
		if err != nil {
			return nil, fmt.Errorf("parsing reference %q: %w", arg, err)
		}
		im.repo = named.Name()
	}
	im.chainID = digest.FromBytes([]byte("oci2-root\x00" + md.Digest.String()))
	cfg := img.Config
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{im.chainID}}
	if im.config, err = json.Marshal(cfg); err != nil {
		return nil, err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(im.config), Size: int64(len(im.config))},
		Layers: []ocispec.Descriptor{{
			MediaType:   mediaTypeRootLayer,
			Digest:      md.Digest,
			Size:        md.Size,
			Annotations: im.labels(),
		}},
	}
	m.SchemaVersion = 2
	if im.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return im, nil
}

func writeBlob(ctx context.Context, cs content.Store, desc ocispec.Descriptor, b []byte, labels map[string]string) error {
	err := content.WriteBlob(ctx, cs, "oci2-import-"+desc.Digest.String(), bytes.NewReader(b), desc, content.WithLabels(labels))
	if err != nil {
		return fmt.Errorf("writing %s to containerd's content store: %w", desc.Digest, err)
	}
	// An existing blob keeps its labels: set ours.
	_, err = cs.Update(ctx, content.Info{Digest: desc.Digest, Labels: labels}, labelPaths(labels)...)
	if err != nil {
		return fmt.Errorf("labelling %s in containerd's content store: %w", desc.Digest, err)
	}
	return nil
}

func labelPaths(labels map[string]string) []string {
	var p []string
	for k := range labels {
		p = append(p, "labels."+k)
	}
	return p
}

// prepareImageSnapshot asks the snapshotter for the image's committed
// snapshot: oci2-snapshotter mounts the image and answers AlreadyExists,
// which makes containerd record the snapshot under the chain ID.
func prepareImageSnapshot(ctx context.Context, sn snapshots.Snapshotter, name string, im *importedImage) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	key := "oci2-import-" + hex.EncodeToString(rnd[:])
	labels := im.labels()
	labels[snapshots.LabelSnapshotRef] = im.chainID.String()
	_, err := sn.Prepare(ctx, key, "", snapshots.WithLabels(labels))
	switch {
	case errdefs.IsAlreadyExists(err):
		return nil
	case err == nil:
		sn.Remove(ctx, key)
		return fmt.Errorf("snapshotter %q made an empty snapshot of the image: it is not oci2-snapshotter", name)
	case errdefs.IsNotFound(err):
		return fmt.Errorf("snapshotter %q: %w (is it in containerd's proxy_plugins?)", name, err)
	default:
		return fmt.Errorf("preparing the image's snapshot in snapshotter %q: %w", name, err)
	}
}

// labels are what tells oci2-snapshotter which image to mount, and from
// where: the root layer's annotations and the image snapshot's labels.
func (im *importedImage) labels() map[string]string {
	l := map[string]string{snapshotter.LabelImage: im.source.String()}
	if im.repo != "" {
		l[snapshotter.LabelSource] = im.repo
	}
	return l
}
