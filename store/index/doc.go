// Package index indexes what a local chunk store holds: its canonical
// frames by frame key (stored ones, and virtual ones whose chunks other blobs
// hold) and every chunk by ID in the frame or unit holding it (SPEC.md §8),
// so a writer reuses frames the store already has, keeps only the new chunks
// of frames that mostly repeat stored ones, and reads back chunks it did not
// keep in memory. An Index only locates; each write goes through its own
// Session (Index.WithSession), which owns the write's units, goroutines and
// counters. The index of a store with an index directory (store.IndexHome)
// lives in immutable index files (SPEC.md §8.2) that processes share and
// search in place, so opening it neither scans the store nor holds it in
// memory.
package index
