package transfer

import (
	"github.com/opencontainers/go-digest"

	"github.com/oci2/oci2/store/registry"
)

// Options are shared by Push, Pull and Copy.
type Options struct {
	// Registry configures the connections: credentials, TLS, insecure
	// registries, parallelism (Jobs), retries, an authenticated transport.
	// Push and Copy set Push themselves.
	Registry registry.Options
	// Progress, when set, receives progress reports (from several
	// goroutines, serialized).
	Progress func(Progress)
	// Warn receives non-fatal conditions (retries, a registry ignoring
	// Range, a refused mount).
	Warn func(msg string)
}

// Progress is one progress report.
type Progress struct {
	Phase      string // "check", "upload", "manifests", "rebuild", "fetch", "copy"
	Done       int64  // blobs or frames done in this phase
	Total      int64
	Bytes      int64 // payload bytes moved in this phase
	BytesTotal int64
	Requests   int64 // requests sent so far (all phases)
}

// Result describes one transfer. Wire counts what crossed the network
// (every request, token and ping requests included).
type Result struct {
	Ref       string        `json:"ref"`
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"media_type"`
	Size      int64         `json:"size"`
	Manifests int           `json:"manifests"`

	registry.Snapshot // requests, bytes_sent, bytes_received

	// Push and copy.
	BlobsPresent  int   `json:"blobs_present,omitempty"`  // already in the target repository
	BlobsMounted  int   `json:"blobs_mounted,omitempty"`  // mounted from another repository
	BlobsUploaded int   `json:"blobs_uploaded,omitempty"` // sent
	BytesUploaded int64 `json:"bytes_uploaded,omitempty"` // blob bytes sent (successful uploads)

	// Pull.
	FramesPresent int   `json:"frames_present,omitempty"` // already stored
	FramesRebuilt int   `json:"frames_rebuilt,omitempty"` // rebuilt from chunks the store had
	FramesFetched int   `json:"frames_fetched,omitempty"`
	BytesFetched  int64 `json:"bytes_fetched,omitempty"` // stored bytes of fetched frames
	RangeRequests int   `json:"range_requests,omitempty"`
	PackRequests  int   `json:"pack_requests,omitempty"` // whole-pack GETs
	BlobsFetched  int   `json:"blobs_fetched,omitempty"` // manifests, configs, pack indexes, other layers
}
