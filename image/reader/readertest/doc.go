// Package readertest builds OCIv2 images by hand for tests: from Go-value
// fixtures (Node trees) or from raw tree objects that break the format's
// rules, so readers and unpackers can be tested against hostile images.
package readertest
