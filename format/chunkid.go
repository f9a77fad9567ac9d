package format

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// ChunkID is the sha256 of a chunk's uncompressed bytes. Tree objects are
// chunks too: a tree's ChunkID is the sha256 of its encoding.
type ChunkID [32]byte

// Sum returns the ChunkID of b.
func Sum(b []byte) ChunkID { return sha256.Sum256(b) }

// String returns "sha256:<hex>".
func (c ChunkID) String() string { return "sha256:" + hex.EncodeToString(c[:]) }

// Digest returns c as an OCI digest.
func (c ChunkID) Digest() digest.Digest { return digest.Digest(c.String()) }

// IsZero reports whether c is the all-zero ID (never a valid chunk).
func (c ChunkID) IsZero() bool { return c == ChunkID{} }

// ParseChunkID parses "sha256:<64 hex>".
func ParseChunkID(s string) (ChunkID, error) {
	var c ChunkID
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return c, fmt.Errorf("parsing chunk id %q: want sha256:<64 hex digits>", s)
	}
	if _, err := hex.Decode(c[:], []byte(h)); err != nil {
		return c, fmt.Errorf("parsing chunk id %q: %w", s, err)
	}
	if strings.ToLower(h) != h {
		return c, fmt.Errorf("parsing chunk id %q: hex must be lowercase", s)
	}
	return c, nil
}

// FromDigest converts an OCI sha256 digest into a ChunkID.
func FromDigest(d digest.Digest) (ChunkID, error) { return ParseChunkID(string(d)) }
