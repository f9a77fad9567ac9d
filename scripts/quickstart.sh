#!/usr/bin/env bash
# Quickstart, as root on a fresh Debian machine with Go 1.26.8 on PATH: the
# main job on the embedded default store.
#
#   1. builds oci2, buildkitd-oci2 and a stock buildctl (Go module proxy);
#   2. makes the busybox base image of the examples as a local OCI layout;
#   3. starts buildkitd-oci2 (store: <root>/oci2);
#   4. builds examples/Dockerfiles/hello with stock buildctl and
#      --output type=oci2,name=quickstart/hello: an OCIv2 image, no tar;
#   5. unpacks it from the daemon's store as an OCI bundle and runs it with runc.
#
#   bash scripts/quickstart.sh
#
# Leaves its work in $WORK (default: a new /var/tmp/oci2-quickstart.* dir):
# the daemon root (and its oci2 store, $WORK/buildkit/oci2), bases, bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
say() { printf '\n==> %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "run as root (buildkitd, runc)" >&2; exit 1; }
command -v go >/dev/null || { echo "Go 1.26.8 must be on PATH" >&2; exit 1; }
need=()
command -v runc >/dev/null || need+=(runc)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ "${#need[@]}" -gt 0 ]; then
	say "installing ${need[*]}"
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi

say "building oci2 and buildkitd-oci2, and stock buildctl, into ./bin"
make build
ONLY=buildctl BIN=$ROOT/bin bash scripts/build-tools.sh >/dev/null
export PATH=$ROOT/bin:$PATH

WORK=${WORK:-$(mktemp -d /var/tmp/oci2-quickstart.XXXXXX)}
say "base image: busybox as a local OCI layout ($WORK/bases/busybox)"
OCI2=$ROOT/bin/oci2 CORPUS=/nonexistent examples/bases/make-bases.sh "$WORK/bases" >/dev/null

say "starting buildkitd-oci2 (root $WORK/buildkit)"
SOCK=unix://$WORK/buildkitd.sock
buildkitd-oci2 --root "$WORK/buildkit" --addr "$SOCK" \
	--oci-worker=true --containerd-worker=false >"$WORK/buildkitd.log" 2>&1 &
DAEMON=$!
trap 'kill $DAEMON 2>/dev/null; wait $DAEMON 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	buildctl --addr "$SOCK" debug workers >/dev/null 2>&1 && break
	sleep 0.2
done

say "buildctl build examples/Dockerfiles/hello --output type=oci2,name=quickstart/hello"
BASE_DIGEST=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
	"$WORK/bases/busybox/index.json")
buildctl --addr "$SOCK" build --progress plain --frontend dockerfile.v0 \
	--local context=examples/Dockerfiles/hello --local dockerfile=examples/Dockerfiles/hello \
	--oci-layout busybox="$WORK/bases/busybox" \
	--opt context:busybox="oci-layout://busybox@$BASE_DIGEST" \
	--output type=oci2,name=quickstart/hello

STORE=$WORK/buildkit/oci2
say "the daemon's oci2 store: oci2 --store $STORE images"
oci2 --store "$STORE" images

say "oci2 unpack --bundle, then runc run"
oci2 --store "$STORE" unpack --bundle quickstart/hello "$WORK/bundle"
runc run --bundle "$WORK/bundle" "oci2-quickstart-$$"

say "done; daemon root, store, bases and bundle are in $WORK"
