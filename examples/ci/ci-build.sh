#!/bin/sh
# ci-build.sh: what a CI system runs for every commit of the application:
# bake examples/ci/docker-bake.hcl on buildkitd-oci2 (a fresh daemon per run
# is fine: the registry cache brings back the unchanged steps), push the
# OCIv2 image with its provenance and SBOM, and print what the registry
# now serves.
#
#   BUILDKIT_HOST=unix:///run/oci2/buildkitd.sock REGISTRY=127.0.0.1:5000 \
#   TAG=$(git rev-parse --short HEAD) APP=. examples/ci/ci-build.sh
#
# Env: BUILDKIT_HOST (the daemon), REGISTRY, REPO, TAG, APP (the build
# context), BASES (examples/bases/make-bases.sh output), SBOM_SCANNER,
# OUTPUT_TYPE (oci2, or image for the layered comparison),
# SOURCE_DATE_EPOCH, METADATA (where buildx writes its metadata file).
# Needs docker and the buildx plugin (or docker-buildx on PATH).
set -eu
cd "$(dirname "$0")/../.."
: "${BUILDKIT_HOST:?BUILDKIT_HOST=unix:///...sock of buildkitd-oci2}"
export REGISTRY=${REGISTRY:-127.0.0.1:5000}
export REPO=${REPO:-oci2-ci/app}
export TAG=${TAG:-latest}
export APP=${APP:-examples/ci/app}
export BASES=${BASES:-examples/bases/out}
export SBOM_SCANNER=${SBOM_SCANNER:-$REGISTRY/oci2-ci/sbom-scanner:latest}
export OUTPUT_TYPE=${OUTPUT_TYPE:-oci2}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
METADATA=${METADATA:-$(mktemp)}

if docker buildx version >/dev/null 2>&1; then
	buildx() { docker buildx "$@"; }
else
	buildx() { docker-buildx "$@"; }
fi

# A builder on the daemon, through buildx's remote driver; a runner that
# keeps its docker config across jobs has it already.
BUILDER=${BUILDER:-oci2-ci}
buildx inspect "$BUILDER" >/dev/null 2>&1 || buildx create --name "$BUILDER" --driver remote "$BUILDKIT_HOST" >/dev/null

# buildx asks for read access to contexts outside the working directory
buildx bake --builder "$BUILDER" --progress plain \
	--allow "fs.read=$(cd "$BASES" && pwd)" --allow "fs.read=$(cd "$APP" && pwd)" \
	--metadata-file "$METADATA" -f examples/ci/docker-bake.hcl app

# What a deployment step reads: the digest, the provenance and the SBOM,
# from the registry, with a stock client.
buildx imagetools inspect "$REGISTRY/$REPO:$TAG" --format '{{json .Provenance.SLSA.buildDefinition.buildType}}'
buildx imagetools inspect "$REGISTRY/$REPO:$TAG" --format '{{json .SBOM.SPDX.name}}'
echo "ci-build: pushed $REGISTRY/$REPO:$TAG"
