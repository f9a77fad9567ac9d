#!/usr/bin/env bash
# Build the stock clients and servers the integration tests drive, from the Go
# module proxy, into BIN (default ./bin):
#   buildctl       github.com/moby/buildkit/cmd/buildctl (a module that requires
#                  buildkit: `go install ...@v` refuses buildkit's exclude block)
#   buildkitd      github.com/moby/buildkit/cmd/buildkitd, the same way: a stock
#                  daemon (run as root, --oci-worker=true --containerd-worker=false)
#                  for the tests of the frontend and of what stock BuildKit does
#   docker-buildx  github.com/docker/buildx/cmd/buildx (the docker CLI plugin)
#   containerd, containerd-shim-runc-v2
#                  github.com/containerd/containerd/v2 (the daemon and its runc
#                  shim, for BuildKit's containerd worker; runc is Debian's),
#                  CGO_ENABLED=0 (the btrfs snapshotter, which needs cgo, is
#                  left out by its build constraint)
#   ctr            containerd's client, at the same version (the snapshotter
#                  test runs images with it)
#   registry       distribution v3 (scripts/build-registry.sh), when present
#   gotestsum      gotest.tools/gotestsum: .ci/run's test runner, whose summary
#                  counts the tests that ran and lists every skip with its reason
# Idempotent: a tool already built at the pinned version is kept.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
BUILDKIT_VERSION=${BUILDKIT_VERSION:-v0.34.2}
BUILDX_VERSION=${BUILDX_VERSION:-v0.38.2}
GOTESTSUM_VERSION=${GOTESTSUM_VERSION:-v1.13.0}
# the version go.mod requires
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
mkdir -p "$BIN"
stamp() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.version" 2>/dev/null)" = "$2" ]; }
# ONLY="buildctl ..." builds just those (the quickstart needs only buildctl).
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }

if want buildctl && ! stamp buildctl "$BUILDKIT_VERSION"; then
	d=$(mktemp -d)
	(cd "$d" && go mod init oci2-tools >/dev/null 2>&1 &&
		go get "github.com/moby/buildkit/cmd/buildctl@$BUILDKIT_VERSION" >/dev/null 2>&1 &&
		CGO_ENABLED=0 go build -o "$BIN/buildctl" github.com/moby/buildkit/cmd/buildctl)
	rm -rf "$d"
	echo "$BUILDKIT_VERSION" > "$BIN/.buildctl.version"
fi

if want buildkitd && ! stamp buildkitd "$BUILDKIT_VERSION"; then
	d=$(mktemp -d)
	(cd "$d" && go mod init oci2-tools >/dev/null 2>&1 &&
		go get "github.com/moby/buildkit/cmd/buildkitd@$BUILDKIT_VERSION" >/dev/null 2>&1 &&
		go build -o "$BIN/buildkitd" -ldflags "-X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION" \
			github.com/moby/buildkit/cmd/buildkitd)
	rm -rf "$d"
	echo "$BUILDKIT_VERSION" > "$BIN/.buildkitd.version"
fi

if want docker-buildx && ! stamp docker-buildx "$BUILDX_VERSION"; then
	d=$(mktemp -d)
	GOBIN=$d CGO_ENABLED=0 go install "github.com/docker/buildx/cmd/buildx@$BUILDX_VERSION"
	mv "$d/buildx" "$BIN/docker-buildx"
	rm -rf "$d"
	echo "$BUILDX_VERSION" > "$BIN/.docker-buildx.version"
fi

if want containerd && { ! stamp containerd "$CONTAINERD_VERSION" || ! stamp containerd-shim-runc-v2 "$CONTAINERD_VERSION"; }; then
	d=$(mktemp -d)
	m=github.com/containerd/containerd/v2
	(cd "$d" && go mod init oci2-tools >/dev/null 2>&1 &&
		go get "$m/cmd/containerd@$CONTAINERD_VERSION" "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" >/dev/null 2>&1 &&
		CGO_ENABLED=0 go build -o "$BIN/" -ldflags "-X $m/version.Version=$CONTAINERD_VERSION" \
			"$m/cmd/containerd" "$m/cmd/containerd-shim-runc-v2")
	rm -rf "$d"
	echo "$CONTAINERD_VERSION" > "$BIN/.containerd.version"
	echo "$CONTAINERD_VERSION" > "$BIN/.containerd-shim-runc-v2.version"
fi

if want ctr && ! stamp ctr "$CONTAINERD_VERSION"; then
	d=$(mktemp -d)
	m=github.com/containerd/containerd/v2
	(cd "$d" && go mod init oci2-tools >/dev/null 2>&1 &&
		go get "$m/cmd/ctr@$CONTAINERD_VERSION" >/dev/null 2>&1 &&
		CGO_ENABLED=0 go build -o "$BIN/" -ldflags "-X $m/version.Version=$CONTAINERD_VERSION" "$m/cmd/ctr")
	rm -rf "$d"
	echo "$CONTAINERD_VERSION" > "$BIN/.ctr.version"
fi

if want gotestsum && ! stamp gotestsum "$GOTESTSUM_VERSION"; then
	d=$(mktemp -d)
	GOBIN=$d CGO_ENABLED=0 go install "gotest.tools/gotestsum@$GOTESTSUM_VERSION"
	mv "$d/gotestsum" "$BIN/gotestsum"
	rm -rf "$d"
	echo "$GOTESTSUM_VERSION" > "$BIN/.gotestsum.version"
fi

if want registry && [ -x "$ROOT/scripts/build-registry.sh" ]; then
	BIN=$BIN "$ROOT/scripts/build-registry.sh"
fi
ls -l "$BIN"
