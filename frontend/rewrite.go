package frontend

import (
	"context"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/solver/pb"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/proto"
)

// graph is a decoded LLB definition: ops by digest, in definition order
// (the last one is the terminal op naming the result).
type graph struct {
	order []digest.Digest
	ops   map[digest.Digest]*pb.Op
	raw   map[digest.Digest][]byte
}

func decode(def *pb.Definition) (*graph, error) {
	g := &graph{ops: map[digest.Digest]*pb.Op{}, raw: map[digest.Digest][]byte{}}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			return nil, fmt.Errorf("decoding LLB op: %w", err)
		}
		d := digest.FromBytes(dt)
		g.order, g.ops[d], g.raw[d] = append(g.order, d), &op, dt
	}
	return g, nil
}

// rewrite replaces every source op of a known OCIv2 base in def with its
// fetch-and-unpack subgraph; the ops above it are re-marshalled with their
// inputs renamed, their metadata and source locations carried over.
func (c *oci2Client) rewrite(ctx context.Context, def *pb.Definition) (*pb.Definition, error) {
	g, err := decode(def)
	if err != nil {
		return nil, err
	}
	out := &pb.Definition{Metadata: map[string]*pb.OpMetadata{}, Source: &pb.Source{Locations: map[string]*pb.Locations{}}}
	if def.Source != nil {
		out.Source.Infos = def.Source.Infos
	}
	seen := map[digest.Digest]bool{}
	emit := func(dt []byte) digest.Digest {
		d := digest.FromBytes(dt)
		if !seen[d] {
			seen[d] = true
			out.Def = append(out.Def, dt)
		}
		return d
	}
	repl := map[digest.Digest]*pb.Input{}
	for _, d := range g.order {
		b := c.baseOf(g.ops[d])
		if b == nil {
			continue
		}
		head, err := c.emitSubgraph(ctx, b, g.ops[d].Platform, out, emit)
		if err != nil {
			return nil, err
		}
		repl[d] = head
		if l := def.Source.GetLocations()[string(d)]; l != nil {
			out.Source.Locations[head.Digest] = l
		}
	}
	if len(repl) == 0 {
		return def, nil
	}
	renamed := map[digest.Digest]digest.Digest{}
	for _, d := range g.order {
		if repl[d] != nil {
			continue
		}
		op, changed := g.ops[d], false
		for _, in := range op.Inputs {
			if r := repl[digest.Digest(in.Digest)]; r != nil {
				in.Digest, in.Index, changed = r.Digest, r.Index, true
			} else if nd, ok := renamed[digest.Digest(in.Digest)]; ok {
				in.Digest, changed = string(nd), true
			}
		}
		dt := g.raw[d]
		if changed {
			if dt, err = (proto.MarshalOptions{Deterministic: true}).Marshal(op); err != nil {
				return nil, fmt.Errorf("marshalling LLB op: %w", err)
			}
		}
		nd := emit(dt)
		renamed[d] = nd
		if md := def.Metadata[string(d)]; md != nil {
			out.Metadata[string(nd)] = md
		}
		if l := def.Source.GetLocations()[string(d)]; l != nil {
			out.Source.Locations[string(nd)] = l
		}
	}
	return out, nil
}

// emitSubgraph adds the ops of b's unpack subgraph for platform p to out
// and returns the input that stands for the base.
func (c *oci2Client) emitSubgraph(ctx context.Context, b *base, p *pb.Platform, out *pb.Definition,
	emit func([]byte) digest.Digest) (*pb.Input, error) {
	var op *ocispec.Platform
	if p != nil {
		op = &ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
	}
	if _, _, err := c.loadManifest(ctx, b, op); err != nil {
		return nil, notBuildable(b.shown, b.digest, err)
	}
	m, err := b.pick(op)
	if err != nil {
		return nil, err
	}
	st, err := c.unpackState(ctx, b, m)
	if err != nil {
		return nil, err
	}
	sub, err := st.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	sg, err := decode(sub.ToPB())
	if err != nil {
		return nil, err
	}
	for _, d := range sg.order[:len(sg.order)-1] {
		emit(sg.raw[d])
		if sg.ops[d].GetSource() != nil {
			c.mu.Lock()
			c.fetchOps[d] = b
			c.mu.Unlock()
		}
		if md, ok := sub.Metadata[d]; ok {
			out.Metadata[string(d)] = md.ToPB()
		}
	}
	terminal := sg.ops[sg.order[len(sg.order)-1]]
	if len(terminal.Inputs) != 1 {
		return nil, fmt.Errorf("unpack subgraph of %s: terminal op has %d inputs", b.ref(b.digest), len(terminal.Inputs))
	}
	return terminal.Inputs[0], nil
}

// baseOf returns the known OCIv2 base a source op pulls, if any.
func (c *oci2Client) baseOf(op *pb.Op) *base {
	src := op.GetSource()
	if src == nil {
		return nil
	}
	ref, ok := strings.CutPrefix(src.Identifier, "docker-image://")
	if !ok {
		return nil
	}
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil
	}
	dg, ok := n.(reference.Digested)
	if !ok {
		return nil
	}
	return c.lookup(dg.Digest())
}
