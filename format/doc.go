// Package format defines the OCIv2 vocabulary written down in SPEC.md: chunk
// identifiers, tree objects, pack indexes, media types and the fixed parameters
// of chunking and packing, with their one canonical binary encoding.
package format
