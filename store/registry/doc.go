// Package registry is the chunk store backend for one repository of an OCI
// distribution registry, spoken to only through the distribution spec (blob
// HEAD/GET with Range, monolithic and chunked uploads, cross-repository
// mounts, manifests and tags).
package registry
