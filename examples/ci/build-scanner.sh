#!/bin/sh
# build-scanner.sh: build the SBOM scanner image the CI job names as
# SBOM_SCANNER, once per registry. BuildKit's own scanner image
# (docker/buildkit-syft-scanner) is not available where this project is
# built (the Go module proxy refuses the module), so this pushes
# examples/ci/sbom-scanner: syft used as a library behind BuildKit's scanner
# protocol, as that image does. It is its own Go module (syft's dependencies
# stay out of the main go.mod); a static binary in a scratch image, built by
# the same daemon with the stock image exporter.
#
#   BUILDKIT_HOST=unix:///...sock SBOM_SCANNER=127.0.0.1:5000/oci2-ci/sbom-scanner:latest \
#   examples/ci/build-scanner.sh
set -eu
cd "$(dirname "$0")/../.."
: "${BUILDKIT_HOST:?BUILDKIT_HOST=unix:///...sock of buildkitd-oci2}"
: "${SBOM_SCANNER:?SBOM_SCANNER=REGISTRY/REPO:TAG to push the scanner to}"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
(cd examples/ci/sbom-scanner && CGO_ENABLED=0 go build -trimpath -o "$ctx/sbom-scanner")
printf 'FROM scratch\nCOPY sbom-scanner /sbom-scanner\nENTRYPOINT ["/sbom-scanner"]\n' >"$ctx/Dockerfile"
buildctl --addr "$BUILDKIT_HOST" build --frontend dockerfile.v0 \
	--local context="$ctx" --local dockerfile="$ctx" \
	--output "type=image,name=$SBOM_SCANNER,push=true"
