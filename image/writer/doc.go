// Package writer turns a filesystem (a directory, or nodes built by an
// importer or exporter) into an OCIv2 image in a store: canonical trees, data
// and tree streams packed into frames and packs, config, manifest and index.
//
// Write is a pipeline. Worker goroutines open, read, chunk and hash files in
// parallel, each a bounded distance ahead (Options.MaxInFlight); one
// goroutine hands their chunks to the data Packer strictly in canonical
// order, whose own workers compress frames (or find them in the store by
// frame key). Pack digests are hashed from the new frames' bytes as the
// Packer reports them in order, so a first write never reads its frames
// back. Trees are encoded bottom-up once every file's extents are known and
// go through a second Packer; then the pack indexes, config and manifest are
// stored. A file given a Candidate (extents it probably has) is checked
// chunk by chunk against it by the workers instead of being chunked.
//
// The caller's nodes are never modified. The result depends only on the
// nodes, the config and the format, never on the store: a frame found in
// the store is the frame the writer would have made.
package writer
