// Package memstore is an in-memory chunkstore.Store for tests: verified puts,
// verified reads, copies in and out, and in-process leases.
package memstore
