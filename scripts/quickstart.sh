#!/usr/bin/env bash
# Quickstart, as root on a fresh Debian machine with Go 1.26.8 on PATH:
# builds oci2, snapshots a small directory into an OCIv2 image, unpacks it as
# an OCI runtime bundle and runs it with runc.
#
#   bash scripts/quickstart.sh
#
# Leaves its work in $WORK (default: a new /var/tmp/oci2-quickstart.* dir):
# the store ($WORK/store), the source tree and the bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n==> %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "run as root (runc, faithful ownership)" >&2; exit 1; }
command -v go >/dev/null || { echo "Go 1.26.8 must be on PATH" >&2; exit 1; }
if ! command -v runc >/dev/null; then
	say "installing runc"
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends runc
fi

say "building oci2 into ./bin"
make build
OCI2=$PWD/bin/oci2

WORK=${WORK:-$(mktemp -d /var/tmp/oci2-quickstart.XXXXXX)}
export OCI2_STORE=$WORK/store

say "making a tiny root filesystem in $WORK/rootfs (one static Go binary)"
mkdir -p "$WORK/hello" "$WORK/rootfs"/{bin,etc,proc,dev,sys,tmp}
cat > "$WORK/hello/main.go" <<'GO'
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("hello from an oci2 image: uid=%d args=%q GREETING=%s\n",
		os.Getuid(), os.Args[1:], os.Getenv("GREETING"))
}
GO
printf 'module hello\n\ngo 1.26\n' > "$WORK/hello/go.mod"
(cd "$WORK/hello" && CGO_ENABLED=0 GOWORK=off go build -trimpath -o "$WORK/rootfs/bin/hello" .)
printf 'root:x:0:0:root:/root:/bin/hello\n' > "$WORK/rootfs/etc/passwd"

say "oci2 create: snapshot the directory into the store ($OCI2_STORE)"
"$OCI2" create --tag quickstart/hello:latest \
	--entrypoint /bin/hello --cmd world --env GREETING=hi "$WORK/rootfs"
"$OCI2" images

say "oci2 unpack --bundle, then runc run"
"$OCI2" unpack --bundle quickstart/hello "$WORK/bundle"
runc run --bundle "$WORK/bundle" "oci2-quickstart-$$"

# TODO(H8): build examples/ Dockerfile with buildkitd-oci2 (exporter type=oci2)
# into the same store, then `oci2 unpack --bundle` + `runc run` the result.

say "done; the store, tree and bundle are in $WORK"
