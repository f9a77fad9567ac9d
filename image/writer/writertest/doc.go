// Package writertest builds test directory trees from Go values
// (Dir{"a": File{Content: "foo"}}) with fixed metadata, and generates larger
// trees for benchmarks.
package writertest
