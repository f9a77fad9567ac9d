package frontend

import (
	"context"
	"errors"
	"fmt"

	"net"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/buildkit/client/llb"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Paths inside the unpack step (the frontend image's own root).
const (
	oci2Binary = "/bin/oci2"
	blobsDir   = "/blobs"
	outDir     = "/out"
)

// unpackState is the subgraph that stands for base manifest m: the daemon
// fetches the manifest, config, pack indexes and packs (llb.ImageBlob,
// each verified against its digest), and the frontend image's own static
// oci2 unpacks them, without network, into an empty directory, which is
// the base's root filesystem.
func (c *oci2Client) unpackState(ctx context.Context, b *base, m *manifest) (llb.State, error) {
	fe, err := c.CurrentFrontend()
	if err != nil {
		return llb.State{}, fmt.Errorf("locating the frontend image: %w", err)
	}
	if fe == nil {
		return llb.State{}, errors.New("the oci2 frontend unpacks OCIv2 bases with its own image, " +
			"and it is not running from one (use it as # syntax=IMAGE or the gateway.v0 source)")
	}
	blobs := []llb.State{m.src, blobState(b.name, m.m.Config.Digest, m.m.Config.MediaType)}
	var size int64
	for _, l := range m.m.Layers {
		blobs = append(blobs, blobState(b.name, l.Digest, l.MediaType))
		size += l.Size
	}
	name := b.ref(b.digest)
	merged := llb.Merge(blobs, llb.WithCustomName(fmt.Sprintf("[oci2] %d blobs of %s", len(blobs), name)))
	run := fe.Run(
		llb.Args([]string{oci2Binary, "unpack", "--blobs", blobsDir, m.desc.Digest.String(), outDir}),
		llb.Network(llb.NetModeNone),
		llb.AddMount(blobsDir+"/sha256", merged, llb.Readonly),
		llb.WithCustomName(fmt.Sprintf("[oci2] unpack %s (%d packs, %s)", name, len(m.m.Layers)/2, units.HumanSize(float64(size)))),
	)
	return run.AddMount(outDir, llb.Scratch()), nil
}

// blobState fetches blob d of image name through the daemon.
func blobState(name string, d digest.Digest, mediaType string) llb.State {
	return llb.ImageBlob(name+"@"+d.String(), llb.WithCustomName(fmt.Sprintf("[oci2] fetch %s %s", kind(mediaType), d)))
}

// kind names a blob by its media type in progress output.
func kind(mediaType string) string {
	for _, k := range []struct{ mt, name string }{
		{ocispec.MediaTypeImageIndex, "index"}, {ocispec.MediaTypeImageManifest, "manifest"}, {"config", "config"},
		{"packindex", "pack index"}, {"pack.tree", "tree pack"}, {"pack.data", "data pack"},
	} {
		if strings.Contains(mediaType, k.mt) {
			return k.name
		}
	}
	return "blob"
}

// manifestOverHTTP fetches manifest (or index) d of image name from the
// registry's manifests endpoint with an Accept header naming its media
// type, verified against d. Loopback registries are plain HTTP, as in
// BuildKit's resolver; others HTTPS.
func manifestOverHTTP(name string, d digest.Digest, mediaType string) (st llb.State, loopback, ok bool) {
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return llb.State{}, false, false
	}
	host, scheme := reference.Domain(n), "https"
	if host == "docker.io" {
		host = "registry-1.docker.io"
	}
	if h, _, err := net.SplitHostPort(host); err == nil && isLoopback(h) || isLoopback(host) {
		scheme, loopback = "http", true
	}
	url := fmt.Sprintf("%s://%s/v2/%s/manifests/%s", scheme, host, reference.Path(n), d)
	return llb.HTTP(url, llb.Header(llb.HTTPHeader{Accept: mediaType}), llb.Checksum(d), llb.Filename(d.Encoded()),
		llb.WithCustomName(fmt.Sprintf("[oci2] fetch %s %s over HTTP", kind(mediaType), d))), loopback, true
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
