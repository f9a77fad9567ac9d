// Package testenv decides, in one place, whether a test's prerequisites (root,
// a command on PATH, a kernel feature such as overlayfs or FUSE) are present:
// a test without them skips on a developer machine and fails under CI=true,
// where every test must run.
package testenv
