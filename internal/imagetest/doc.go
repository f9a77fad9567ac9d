// Package imagetest writes small images through the real writer for the
// tests of the packages that store, index and read them: node trees from Go
// values, seeded file contents, and Tag (write, image index, ref).
package imagetest
