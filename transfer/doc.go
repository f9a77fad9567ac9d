// Package transfer moves OCIv2 images between a local store and registries:
// Push sends only the packs a repository lacks (mounting them from sibling
// repositories when it can), Pull fetches only the frames a store lacks with
// coalesced range requests, Copy goes registry to registry.
package transfer
