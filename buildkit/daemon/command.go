package daemon

import (
	"fmt"
	"runtime/debug"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/moby/buildkit/version"
	"github.com/urfave/cli/v3"
)

// Our own flags of buildkitd; upstream's are untouched.
const (
	FlagStore      = "oci2-store"
	FlagBaseImages = "oci2-base-images"
)

// Flags are the daemon's command-line flags, appended to buildkitd's.
func Flags() []cli.Flag {
	return []cli.Flag{&cli.StringFlag{
		Name:  FlagStore,
		Usage: `oci2 store written by "--output type=oci2" (default: <root>/oci2; config: [oci2] store)`,
	}, &cli.StringFlag{
		Name:  FlagBaseImages,
		Value: "auto",
		Usage: `OCIv2 images of the oci2 store as build bases: "auto" (FROM, COPY --from, oci2://), "off" (stock behaviour)`,
	}}
}

// OpenCommand opens the daemon of buildkitd command c (whose Flags include
// ours): the [oci2] table of its --config file, --oci2-store over the
// table's store, and --oci2-base-images. root is buildkitd's root and hosts
// its registries.
func OpenCommand(c *cli.Command, root string, hosts docker.RegistryHosts) (*Daemon, error) {
	cfg, err := LoadConfig(c.String("config"))
	if err != nil {
		return nil, err
	}
	if c.IsSet(FlagStore) {
		cfg.Store = c.String(FlagStore)
	}
	opt := Options{Config: cfg, Root: root, Hosts: hosts}
	switch mode := c.String(FlagBaseImages); mode {
	case "auto":
		opt.BaseImages = true
	case "off":
	default:
		return nil, fmt.Errorf("--%s=%q: want auto or off", FlagBaseImages, mode)
	}
	return Open(opt)
}

// SetBuildKitVersion sets BuildKit's reported version to the buildkit
// module's when the build did not set it with -ldflags (it is then
// "v0.0.0+unknown", and clients such as buildx gate features on it). It
// reports whether it did. Call it from a package-level initializer of the
// main package, which runs before buildkitd's init reads the version.
func SetBuildKitVersion() bool {
	if version.Version != "v0.0.0+unknown" {
		return false
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/moby/buildkit" {
				version.Version = m.Version
				return true
			}
		}
	}
	return false
}
