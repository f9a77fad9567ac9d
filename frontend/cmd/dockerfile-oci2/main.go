// Command dockerfile-oci2 is the oci2 Dockerfile frontend: the entry point
// of the frontend image, run by BuildKit for `# syntax=IMAGE`.
package main

import (
	"fmt"
	"os"

	"github.com/moby/buildkit/frontend/gateway/grpcclient"
	"github.com/moby/buildkit/util/appcontext"
	_ "github.com/moby/buildkit/util/grpcutil/encoding/proto"

	"github.com/oci2/oci2/frontend"
)

func main() {
	if err := grpcclient.RunFromEnvironment(appcontext.Context(), frontend.Build); err != nil {
		fmt.Fprintf(os.Stderr, "dockerfile-oci2: %+v\n", err)
		os.Exit(1)
	}
}
