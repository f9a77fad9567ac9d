// Package chunking cuts a regular file's logical bytes into the extents of
// SPEC.md §3: zero extents for long aligned zero runs, content-defined chunks
// (restic's Rabin chunker with the fixed parameters of package format) between.
package chunking
