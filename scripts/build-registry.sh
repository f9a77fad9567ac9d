#!/usr/bin/env bash
# Builds the reference OCI registry (github.com/distribution/distribution/v3,
# cmd/registry) from the Go module proxy into DIR (default ./bin) and prints
# the binary's path on stdout. The registry tests (store/registry,
# transfer, tests/registry_test.go) find it on PATH, or through
# $OCI2_REGISTRY_BIN.
#
#   scripts/build-registry.sh [DIR]
#
# A binary already built at the pinned version is reused.
set -euo pipefail
VERSION=${REGISTRY_VERSION:-v3.1.2}
cd "$(dirname "$0")/.."
DIR=${1:-${BIN:-$(pwd)/bin}}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
out=$DIR/registry
stamp=$DIR/.registry.version
if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$VERSION" ]; then
	echo "$out"
	exit 0
fi
# go install ignores the current module (and its go.mod) with @version.
GOBIN=$DIR GOFLAGS= go install "github.com/distribution/distribution/v3/cmd/registry@$VERSION" >&2
echo "$VERSION" >"$stamp"
echo "$out"
