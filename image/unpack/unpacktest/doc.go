// Package unpacktest snapshots directory trees (type, mode, owner, mtime to
// the nanosecond, xattrs, content, device numbers, link targets, hardlink
// groups, optionally allocated blocks) and compares them, for round-trip
// tests of writers and unpackers.
package unpacktest
