// Package pack groups a stream of chunks into frames and packs (SPEC.md §5):
// deterministic frame and pack boundaries, the pinned frame encoder, bounded
// verified decoding, and pack assembly from frames.
package pack
