// Package frontend is the `# syntax=` Dockerfile frontend of oci2: BuildKit's
// own Dockerfile builder over a gateway client that makes OCIv2 images work
// as bases on a stock BuildKit daemon. On buildkitd-oci2, which builds on
// OCIv2 images itself, it passes every request through.
package frontend
