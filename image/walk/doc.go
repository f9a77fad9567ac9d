// Package walk reads the graph of an image (index → manifests, including
// attestation manifests, → config and layers) in one place: one set of
// media types (format's OCI and Docker ones), one nesting limit
// (format.MaxIndexDepth), one size limit (format.MaxManifestSize) and one
// rule for a descriptor without a media type. The store's index, gc and
// check, pull, push and copy, and the reader's resolution all use it; what
// they do at each node is theirs.
package walk
