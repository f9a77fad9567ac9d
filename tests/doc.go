// Package tests holds end-to-end tests: they build the real binaries
// (cmd/...) and drive them on real directory trees, with runc, skopeo and
// umoci where the test needs them. Most need root; when CI=true a missing
// tool or missing root fails the test instead of skipping it.
package tests
