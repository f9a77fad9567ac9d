package frontend

import (
	"context"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/builder"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/apicaps"
)

// LabelBaseImages is the worker label buildkitd-oci2 sets when it builds on
// OCIv2 images itself (frontends see it in BuildOpts().Workers).
const LabelBaseImages = "org.oci2.base-images"

// OptHideCaps is a frontend option (--opt oci2-hide-caps=CAP,...) that makes
// the frontend act as if the daemon lacked those LLB capabilities: how the
// tests reach the error an older daemon gives without building one.
const OptHideCaps = "oci2-hide-caps"

// Build is the frontend's entry point (a client.BuildFunc).
func Build(ctx context.Context, c client.Client) (*client.Result, error) {
	if daemonBuildsOCIv2(c.BuildOpts()) {
		return builder.Build(ctx, c)
	}
	return builder.Build(ctx, newClient(c))
}

// daemonBuildsOCIv2 reports whether a worker of the daemon carries
// LabelBaseImages: then the daemon resolves, fetches and unpacks OCIv2
// bases, with chunk reuse, and the frontend must not interfere.
func daemonBuildsOCIv2(o client.BuildOpts) bool {
	for _, w := range o.Workers {
		if w.Labels[LabelBaseImages] != "" {
			return true
		}
	}
	return false
}

// llbCaps are the daemon's LLB capabilities, less those OptHideCaps hides.
func llbCaps(o client.BuildOpts) func(apicaps.CapID) error {
	hidden := map[string]bool{}
	for _, c := range strings.Split(o.Opts[OptHideCaps], ",") {
		hidden[strings.TrimSpace(c)] = true
	}
	return func(id apicaps.CapID) error {
		if hidden[string(id)] {
			return apicaps.CapError{ID: id}
		}
		return o.LLBCaps.Supports(id)
	}
}

// neededCaps are the LLB capabilities of the fetch-and-unpack subgraph.
var neededCaps = []apicaps.CapID{pb.CapSourceImageBlob, pb.CapMergeOp, pb.CapExecMetaNetwork}
