package readertest

import (
	"context"

	"github.com/oci2/oci2/image/reader"
	"github.com/oci2/oci2/store/memstore"
)

// Opened builds img in a new in-memory store and opens it, with a
// ChunkReader over that store: a fixture ready to walk or unpack.
func Opened(ctx context.Context, img Image) (*reader.Image, *reader.ChunkReader, error) {
	st := memstore.New()
	desc, err := Build(ctx, st, img)
	if err != nil {
		return nil, nil, err
	}
	ri, err := reader.Open(ctx, st, desc)
	if err != nil {
		return nil, nil, err
	}
	return ri, reader.NewChunkReader(ri, reader.LocalFrames(st)), nil
}
