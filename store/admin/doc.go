// Package admin keeps a store healthy: Check verifies every image a ref
// reaches, GC deletes what no ref reaches, DU accounts for space per image,
// and Diff compares two images' trees.
package admin
