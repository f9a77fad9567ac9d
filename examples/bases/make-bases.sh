#!/bin/sh
# make-bases.sh OUT: build the base images of examples/Dockerfiles as OCI
# image layouts (OUT/NAME, tag "latest"), with the project's own tools:
# each root filesystem is stored with `oci2 create` and written out as an
# ordinary single-layer image with `oci2 export`. Nothing is fetched.
#
#   busybox       /bin/busybox (Debian's busybox-static) + applet symlinks,
#                 /etc/passwd, /etc/group, and files the overwrite example edits
#   golang        busybox + the host's Go toolchain ($(go env GOROOT)) in
#                 /usr/local/go and the host's CA certificates
#   debian        the corpus debian-minbase tree ($CORPUS/debian-minbase),
#                 skipped when absent
#   debian-build  the corpus debian-build tree (440 MB; the large-base case),
#                 only with BASES_LARGE=1 and when present
#
# Builds use them with --build-context NAME=oci-layout://OUT/NAME (buildx) or
# --oci-layout NAME=OUT/NAME --opt context:NAME=oci-layout://NAME (buildctl).
# Env: OCI2 (the oci2 binary), CORPUS (default /work/corpus), or the trees
# themselves as MINBASE and BUILDTREE, SOURCE_DATE_EPOCH (default
# 1700000000: reproducible bases).
set -eu
OUT=${1:?usage: make-bases.sh OUT}
OCI2=${OCI2:-oci2}
CORPUS=${CORPUS:-/work/corpus}
MINBASE=${MINBASE:-$CORPUS/debian-minbase}
BUILDTREE=${BUILDTREE:-$CORPUS/debian-build}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
BUSYBOX=${BUSYBOX:-/bin/busybox}

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STORE=$WORK/store

# layout NAME ROOTFS [oci2 create flags...]: ROOTFS -> OUT/NAME:latest
layout() {
	name=$1 rootfs=$2
	shift 2
	rm -rf "$OUT/$name"
	"$OCI2" --store "$STORE" create --tag "$name" "$@" "$rootfs"
	"$OCI2" --store "$STORE" export --compression none "$name" "oci:$OUT/$name:latest"
	echo "$OUT/$name"
}

busybox_root() {
	r=$1
	mkdir -p "$r/bin" "$r/etc" "$r/root" "$r/tmp" "$r/usr/local/bin" "$r/var/lib"
	chmod 1777 "$r/tmp"
	chmod 0700 "$r/root"
	cp "$BUSYBOX" "$r/bin/busybox"
	for a in $("$BUSYBOX" --list); do
		[ "$a" = busybox ] || ln -s busybox "$r/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
	echo "busybox base of the oci2 examples" >"$r/etc/motd"
	# edited by examples/Dockerfiles/overwrite
	mkdir -p "$r/usr/share/oci2-base/dir" "$r/usr/share/oci2-base/sub" "$r/var/lib/oci2-base"
	echo x >"$r/usr/share/oci2-base/dir/x"
	echo file >"$r/usr/share/oci2-base/file"
	echo c >"$r/usr/share/oci2-base/sub/c"
	echo old1 >"$r/var/lib/oci2-base/old1"
	echo old2 >"$r/var/lib/oci2-base/old2"
}

busybox_root "$WORK/busybox"
layout busybox "$WORK/busybox" --cmd /bin/sh \
	--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

busybox_root "$WORK/golang"
mkdir -p "$WORK/golang/usr/local" "$WORK/golang/etc/ssl/certs"
cp -a "$(go env GOROOT)" "$WORK/golang/usr/local/go"
# CA certificates, as golang images carry them (GOPROXY over https)
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
	cp /etc/ssl/certs/ca-certificates.crt "$WORK/golang/etc/ssl/certs/"
fi
layout golang "$WORK/golang" --cmd /bin/sh \
	--env PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--env GOTOOLCHAIN=local --env GOPROXY=off --env GOFLAGS=-mod=mod \
	--env GOCACHE=/tmp/go-cache --env GOPATH=/tmp/go --env HOME=/root
rm -rf "$WORK/golang"

if [ -d "$MINBASE" ]; then
	layout debian "$MINBASE" --cmd /bin/bash \
		--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
else
	echo "make-bases: $MINBASE missing: no debian base" >&2
fi
if [ "${BASES_LARGE:-0}" = 1 ] && [ -d "$BUILDTREE" ]; then
	layout debian-build "$BUILDTREE" --cmd /bin/bash \
		--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
fi
