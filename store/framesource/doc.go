// Package framesource reads the frames and chunks of images in a local store
// whether a frame is kept as its own blob or is virtual (its chunks held by
// units and other frames, SPEC.md §8): canonical frame bytes for packs
// (regenerated and checked when virtual), raw frames for readers.
package framesource
