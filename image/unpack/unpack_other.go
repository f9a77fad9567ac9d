//go:build !linux

package unpack

import (
	"context"
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/oci2/oci2/image/reader"
)

var errUnsupported = errors.New("unpack: only supported on linux")

func unpackDir(ctx context.Context, img *reader.Image, cr *reader.ChunkReader, dest string, opts Options) (Stats, error) {
	return Stats{}, errUnsupported
}

func bundle(ctx context.Context, img *reader.Image, cr *reader.ChunkReader, dir string, opts Options) (Stats, error) {
	return Stats{}, errUnsupported
}

// Spec is only supported on linux.
func Spec(img *reader.Image, rootfs string, warn func(path string, err error)) (*specs.Spec, error) {
	return nil, errUnsupported
}
