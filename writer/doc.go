// Package writer turns a filesystem (a directory, or nodes built by an
// importer or exporter) into an OCIv2 image in a store: canonical trees, data
// and tree streams packed into frames and packs, config, manifest and index.
package writer
