package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
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
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/oci2/oci2/snapshotter/importspec"
)

// maxImportSpec bounds the description read from stdin (a manifest and a
// config: kilobytes).
const maxImportSpec = 16 << 20

// runImport is `oci2-snapshotter import`: the containerd half of `oci2
// containerd import`, which sends the image's description (an
// importspec.Image) as JSON on stdin. Keeping containerd's client here
// keeps it out of the oci2 binary.
func runImport(args []string, stdin io.Reader) error {
	fs := flag.NewFlagSet("oci2-snapshotter import", flag.ContinueOnError)
	address := fs.String("address", "/run/containerd/containerd.sock", "containerd's socket")
	namespace := fs.String("namespace", "default", "containerd namespace")
	name := fs.String("snapshotter", "oci2", "containerd's name of the oci2-snapshotter proxy plugin")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("import: unexpected arguments %q (the image's description is read from stdin)", fs.Args())
	}
	b, err := io.ReadAll(io.LimitReader(stdin, maxImportSpec+1))
	if err != nil {
		return fmt.Errorf("import: reading the description: %w", err)
	}
	if len(b) > maxImportSpec {
		return fmt.Errorf("import: description over %d bytes", maxImportSpec)
	}
	var im importspec.Image
	if err := json.Unmarshal(b, &im); err != nil {
		return fmt.Errorf("import: parsing the description: %w", err)
	}
	if err := im.Validate(); err != nil {
		return err
	}
	ctx := namespaces.WithNamespace(context.Background(), *namespace)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return importImage(ctx, *address, *name, &im)
}

// importImage writes im into containerd at address: its blobs, its
// image snapshot (mounted by snapshotter name) and its image record.
func importImage(ctx context.Context, address, name string, im *importspec.Image) error {
	conn, err := grpc.NewClient("unix://"+address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("containerd at %s: %w", address, err)
	}
	defer conn.Close()
	// A lease keeps what is written from containerd's gc until the image
	// record names it.
	lm := leaseproxy.NewLeaseManager(leasesapi.NewLeasesClient(conn))
	lease, err := lm.Create(ctx, leases.WithRandomID(), leases.WithExpiration(time.Hour))
	if err != nil {
		return fmt.Errorf("containerd at %s: lease: %w", address, errgrpc.ToNative(err))
	}
	defer lm.Delete(context.WithoutCancel(ctx), lease)
	ctx = leases.WithLease(ctx, lease.ID)
	cs := contentproxy.NewContentStore(contentapi.NewContentClient(conn))
	cfg := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(im.Config), Size: int64(len(im.Config))}
	// gc labels: the config keeps the snapshot, the manifest the config.
	if err := writeBlob(ctx, cs, cfg, im.Config, map[string]string{
		"containerd.io/gc.ref.snapshot." + name: im.ChainID.String(),
	}); err != nil {
		return err
	}
	man := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(im.Manifest), Size: int64(len(im.Manifest))}
	if err := writeBlob(ctx, cs, man, im.Manifest, map[string]string{
		"containerd.io/gc.ref.content.config": cfg.Digest.String(),
	}); err != nil {
		return err
	}
	sn := snapshotproxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), name)
	if err := prepareImageSnapshot(ctx, sn, name, im); err != nil {
		return err
	}
	if err := putImage(ctx, imagesapi.NewImagesClient(conn), im.Name, man); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "imported %s (oci2 manifest %s) as containerd image %s, snapshot %s\n", im.Name, im.Source, man.Digest, im.ChainID)
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
func prepareImageSnapshot(ctx context.Context, sn snapshots.Snapshotter, name string, im *importspec.Image) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	key := "oci2-import-" + hex.EncodeToString(rnd[:])
	labels := map[string]string{snapshots.LabelSnapshotRef: im.ChainID.String()}
	for k, v := range im.Labels {
		labels[k] = v
	}
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
