// Package registrytest serves registries for tests and puts misbehaving
// proxies in front of them. StartInProcess serves go-containerregistry's
// in-process registry (Range reads, chunked uploads; no binary needed): unit
// tests of client logic use it. Start runs the reference registry
// (distribution's `registry` binary), plain or with htpasswd auth over TLS:
// tests of cross-repository mounts, auth and TLS, and the integration tests,
// use it.
package registrytest
