// Package store defines the content-addressed store of oci2 as small role
// interfaces (read, write, list/delete, refs, leases) shared by every backend.
package store
