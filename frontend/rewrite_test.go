package frontend

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/pb"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
)

// fakeGateway is just enough of a gateway client for rewrite: the
// frontend's own image.
type fakeGateway struct{ client.Client }

func (fakeGateway) CurrentFrontend() (*llb.State, error) {
	st := llb.Image("example.com/oci2/dockerfile:1@" + digest.FromString("frontend").String())
	return &st, nil
}

// TestRewrite replaces the source op of a known OCIv2 base, and only it,
// with the fetch-and-unpack subgraph, and keeps the graph above it whole:
// every input names an op of the definition, and the op above the base
// reads the unpack step's output.
func TestRewrite(t *testing.T) {
	ctx := context.Background()
	idx := digest.FromString("index")
	mdg := digest.FromString("manifest")
	layers := []ocispec.Descriptor{
		{MediaType: "application/vnd.oci2.packindex.v1", Digest: digest.FromString("pi")},
		{MediaType: "application/vnd.oci2.pack.data.v1", Digest: digest.FromString("pack")},
	}
	b := &base{shown: "127.0.0.1:5000/oci2/base:v1", name: "127.0.0.1:5000/oci2/base", digest: idx,
		index: &ocispec.Index{Manifests: []ocispec.Descriptor{{Digest: mdg, Platform: &ocispec.Platform{
			OS: "linux", Architecture: "amd64", OSFeatures: []string{format.PlatformFeature}}}}},
		loaded: map[digest.Digest]*manifest{}}
	b.put(&manifest{desc: ocispec.Descriptor{Digest: mdg}, m: ocispec.Manifest{
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString("config")},
		Layers: layers}, src: blobState(b.name, mdg, ocispec.MediaTypeImageManifest)})
	c := newClient(fakeGateway{})
	c.remember(b)

	plat := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	from := llb.Image(b.name+":v1@"+idx.String(), llb.Platform(plat))
	other := llb.Image("docker.io/library/busybox@" + digest.FromString("busybox").String())
	st := from.Run(llb.Shlex("make"), llb.AddMount("/tools", other, llb.Readonly)).Root()
	def, err := st.Marshal(ctx, llb.Platform(plat))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.rewrite(ctx, def.ToPB())
	if err != nil {
		t.Fatal(err)
	}
	g, err := decode(out)
	if err != nil {
		t.Fatal(err)
	}
	var unpack digest.Digest
	var sources []string
	for _, d := range g.order {
		op := g.ops[d]
		if s := op.GetSource(); s != nil {
			sources = append(sources, s.Identifier)
		}
		if e := op.GetExec(); e != nil && slices.Contains(e.Meta.Args, "--blobs") {
			unpack = d
			if e.Network != pb.NetMode_NONE {
				t.Errorf("the unpack step has network %v", e.Network)
			}
		}
		for _, in := range op.Inputs {
			if g.ops[digest.Digest(in.Digest)] == nil {
				t.Errorf("op %s reads %s, not in the definition", d, in.Digest)
			}
		}
	}
	if unpack == "" {
		t.Fatalf("no unpack step; sources %q", sources)
	}
	for _, s := range sources {
		if strings.HasPrefix(s, "docker-image://"+b.name+":v1@") {
			t.Errorf("the base's source op is still there: %s", s)
		}
	}
	for _, want := range []string{"docker-image://docker.io/library/busybox@", "docker-image+blob://" + b.name + "@" + layers[1].Digest.String()} {
		if !slices.ContainsFunc(sources, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("no source %s in %q", want, sources)
		}
	}
	// The RUN reads the unpack step's output as its root.
	var run *pb.Op
	for _, d := range g.order {
		if e := g.ops[d].GetExec(); e != nil && slices.Contains(e.Meta.Args, "make") {
			run = g.ops[d]
		}
	}
	if run == nil || run.Inputs[0].Digest != string(unpack) {
		t.Errorf("the RUN does not run on the unpacked base: %v", run)
	}
	// A definition without a known base is returned as it is.
	plain, _ := other.Marshal(ctx)
	if got, err := c.rewrite(ctx, plain.ToPB()); err != nil || len(got.Def) != len(plain.Def) {
		t.Errorf("rewrite of a definition without a base: %v, %d ops", err, len(got.Def))
	}
}
