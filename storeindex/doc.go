// Package storeindex indexes the frames of a chunk store by frame key and
// their chunks by ID, so a writer reuses frames the store already holds and
// reads back chunks it did not keep in memory.
package storeindex
