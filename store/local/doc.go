// Package local is the embedded default chunk store: a directory laid out as
// an OCI image layout (oci-layout, index.json, blobs/sha256/) whose writes are
// atomic and verified, whose refs live in index.json, and whose leases are
// flock(2) locks shared between processes. Store-private state is in oci2/.
package local
