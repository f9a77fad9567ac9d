// Package refname normalizes image names the way docker does
// ("hello" is "docker.io/library/hello:latest") and tells a digest from a name.
package refname
