package exporter

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	bkexporter "github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/session"

	"github.com/oci2/oci2/transfer"
)

// Type is the exporter's name: --output type=oci2.
const Type = "oci2"

// Opt configures the exporter. One Exporter serves the whole daemon.
type Opt struct {
	// State is the daemon's oci2 store and its frame index (never a path
	// chosen by a client).
	State *State
	// SessionManager gives access to the client's session (credentials for
	// push=true).
	SessionManager *session.Manager
	// RegistryHosts are the worker's registry settings (buildkitd.toml
	// [registry."HOST"]), as the image exporter gets them; nil: BuildKit's
	// defaults (HTTPS, plain HTTP for localhost).
	RegistryHosts docker.RegistryHosts
	// Remotes, when set, records which repositories received which
	// images, so that a push mounts packs from a sibling repository
	// instead of uploading them (shared with `oci2 push` on the same store).
	Remotes *transfer.Remotes
	// Cache remembers the extents of files exported before, so unchanged
	// files are neither read nor chunked again (see SnapshotFileCache).
	// One per worker; nil disables it.
	Cache *SnapshotFileCache
	// Trees remembers the walked trees of layer chains, so an export walks
	// only the layers above them (see TreeCache). One per worker; nil
	// disables it.
	Trees *TreeCache
	// Workers is the writer's parallelism (0: the writer's default).
	Workers int
}

// Exporter is the BuildKit exporter "oci2".
type Exporter struct {
	opt Opt
}

// New returns the oci2 exporter over opt.Store.
func New(opt Opt) (*Exporter, error) {
	if opt.State == nil || opt.State.Store == nil {
		return nil, fmt.Errorf("oci2 exporter: no store")
	}
	return &Exporter{opt: opt}, nil
}

// Resolve validates attrs; an invalid or unknown attribute fails here,
// before anything is built.
func (e *Exporter) Resolve(ctx context.Context, id int, attrs map[string]string) (bkexporter.ExporterInstance, error) {
	a, err := ParseAttrs(attrs)
	if err != nil {
		return nil, err
	}
	return &instance{exp: e, id: id, rawAttrs: attrs, attrs: a}, nil
}

// instance is one resolved --output type=oci2.
type instance struct {
	exp      *Exporter
	id       int
	rawAttrs map[string]string
	attrs    *Attrs
}

func (i *instance) ID() int                    { return i.id }
func (i *instance) Name() string               { return "exporting to oci2 store" }
func (i *instance) Config() *bkexporter.Config { return bkexporter.NewConfig() }
func (i *instance) Type() string               { return Type }
func (i *instance) Attrs() map[string]string   { return i.rawAttrs }
