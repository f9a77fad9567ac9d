// Package memstore is an in-memory store.Store for tests: verified puts,
// verified reads, copies in and out, in-process leases, and the local
// store's roles (unit descriptors, Sync and Keep, hashed puts).
package memstore
