#!/usr/bin/env bash
# One side-by-side run of the `# syntax=` frontend on a stock buildkitd
# (README, "Building on OCIv2 images"): the same `FROM base` + `RUN true`
#   (a) through the frontend, base = the tree as an OCIv2 image in a
#       distribution registry on 127.0.0.1;
#   (b) stock Dockerfile frontend, base = the same tree as an ordinary
#       gzip image (oci2 export) in the same registry.
# Each side runs on a fresh stock buildkitd (own root), solve only (no
# export). Needs root, runc, buildkitd, buildctl, registry, skopeo on PATH.
#   bench/frontend.sh TREE   (e.g. /var/cache/oci2-corpus/debian-build)
set -euo pipefail
TREE=${1:?usage: bench/frontend.sh TREE}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /var/tmp/oci2-frontend-bench-XXXXXX)
PORT=${PORT:-5098}
R=127.0.0.1:$PORT
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT

(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$W/fe/" ./frontend/cmd/dockerfile-oci2 ./cmd/oci2)
OCI2="$W/fe/oci2"
cat > "$W/registry.yml" <<EOC
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry
http:
  addr: $R
  secret: bench
EOC
registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 & pids+=($!)

"$OCI2" --store "$W/store" create --tag bench/base "$TREE" >/dev/null 2>&1
"$OCI2" --store "$W/store" push bench/base "$R/oci2/base:v1" >/dev/null 2>&1
"$OCI2" --store "$W/store" export bench/base "oci:$W/gzip:v1" >/dev/null 2>&1
skopeo copy -q --dest-tls-verify=false "oci:$W/gzip:v1" "docker://$R/plain/base:v1"

daemon() { # name: a fresh stock buildkitd on $W/$1
	mkdir -p "$W/$1"; : > "$W/$1/buildkitd.toml"
	buildkitd --root "$W/$1/root" --addr "unix://$W/$1/sock" --config "$W/$1/buildkitd.toml" \
		--oci-worker=true --containerd-worker=false >"$W/$1/log" 2>&1 & pids+=($!)
	for _ in $(seq 100); do buildctl --addr "unix://$W/$1/sock" debug workers >/dev/null 2>&1 && return; sleep 0.3; done
	echo "buildkitd $1 did not start" >&2; exit 1
}
solve() { # daemon dockerfile-dir extra...
	local d=$1 ctx=$2; shift 2
	local t0; t0=$(date +%s.%N)
	buildctl --addr "unix://$W/$d/sock" build --progress plain --frontend dockerfile.v0 \
		--local context="$ctx" --local dockerfile="$ctx" "$@" >"$W/$d/build.log" 2>&1
	echo "$(date +%s.%N) - $t0" | bc
}

daemon fe
buildctl --addr "unix://$W/fe/sock" build --frontend dockerfile.v0 --local context="$W/fe" \
	--local dockerfile="$ROOT/frontend" --output "type=oci,dest=$W/fe-image,tar=false" >/dev/null 2>&1
D=$(sed 's/.*"digest":"\([^"]*\)".*/\1/' "$W/fe-image/index.json")
mkdir -p "$W/ctx-fe" "$W/ctx-stock"
printf '# syntax=oci2/dockerfile:1\nFROM %s/oci2/base:v1\nRUN true\n' "$R" > "$W/ctx-fe/Dockerfile"
printf 'FROM %s/plain/base:v1\nRUN true\n' "$R" > "$W/ctx-stock/Dockerfile"
daemon stock

tfe=$(solve fe "$W/ctx-fe" --oci-layout "fe=$W/fe-image" --opt "context:oci2/dockerfile:1=oci-layout://fe@$D")
tstock=$(solve stock "$W/ctx-stock")
packs=$(find "$W/registry" -path '*/oci2/base/_layers/*' -name link | wc -l)
size() { curl -s -H "Accept: application/vnd.oci.image.manifest.v1+json" "http://$R/v2/$1/manifests/$2" |
	grep -o '"size":[0-9]*' | sed 1d | cut -d: -f2 | paste -sd+ | bc; }
md=$(curl -s -H "Accept: application/vnd.oci.image.index.v1+json" "http://$R/v2/oci2/base/manifests/v1" | grep -o 'sha256:[0-9a-f]*' | head -1)
echo "date:                 $(date -u +%F)"
echo "tree:                 $TREE ($(du -sh "$TREE" | cut -f1))"
echo "load:                 $(cut -d' ' -f1-3 /proc/loadavg)"
echo "frontend, OCIv2 base: ${tfe} s, $(size oci2/base "$md") bytes of blobs (pack indexes and packs, $packs blobs in the repository)"
echo "stock, gzip base:     ${tstock} s, $(size plain/base v1) bytes of layers"
grep -E '^#[0-9]+ \[oci2\] unpack' "$W/fe/build.log" | head -1
