// Package registrytest starts the reference OCI registry (distribution's
// `registry` binary) for tests, plain or with htpasswd auth over TLS, and
// puts misbehaving proxies in front of it.
package registrytest
