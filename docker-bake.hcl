# docker buildx bake targets for the examples and for the images this
# project ships. Every output is `type=oci2`: run them against a builder on
# buildkitd-oci2, e.g.
#
#   buildkitd-oci2 --addr unix:///run/oci2/buildkitd.sock &
#   docker buildx create --name oci2 --driver remote unix:///run/oci2/buildkitd.sock
#   examples/bases/make-bases.sh examples/bases/out    # base images as OCI layouts
#   docker buildx bake --builder oci2 --allow fs.read=$PWD/examples/bases/out          # examples
#   docker buildx bake --builder oci2 --allow fs.read=$PWD/examples/bases/out images   # daemon image
#
# (buildx asks for --allow fs.read=... because the bases are local layouts
# outside the build contexts.)
# Bases come from local OCI layouts (BASES), never from a registry; images
# are named NAME_PREFIX + target in the daemon's oci2 store (`oci2 --store
# <root>/oci2 images`). buildx's -t does not reach custom exporters: the
# name is the exporter's name= attribute.

variable "BASES" {
  default = "examples/bases/out"
}
variable "NAME_PREFIX" {
  default = "oci2-examples/"
}
variable "FRONTEND_OUTPUT" {
  default = "type=oci,dest=bin/frontend-image,tar=false"
}
variable "GOPROXY" {
  default = "https://proxy.golang.org,direct"
}

group "default" {
  targets = ["examples"]
}

group "examples" {
  targets = ["hello", "go", "debian", "overwrite", "meta"]
}

group "images" {
  targets = ["buildkitd-oci2"]
}

target "hello" {
  context  = "examples/Dockerfiles/hello"
  contexts = { busybox = "oci-layout://${BASES}/busybox:latest" }
  output   = ["type=oci2,name=${NAME_PREFIX}hello"]
}

target "go" {
  context = "examples/Dockerfiles/go"
  contexts = {
    busybox = "oci-layout://${BASES}/busybox:latest"
    golang  = "oci-layout://${BASES}/golang:latest"
  }
  output = ["type=oci2,name=${NAME_PREFIX}go"]
}

target "debian" {
  context  = "examples/Dockerfiles/debian"
  contexts = { debian = "oci-layout://${BASES}/debian:latest" }
  output   = ["type=oci2,name=${NAME_PREFIX}debian"]
}

target "overwrite" {
  context  = "examples/Dockerfiles/overwrite"
  contexts = { busybox = "oci-layout://${BASES}/busybox:latest" }
  output   = ["type=oci2,name=${NAME_PREFIX}overwrite"]
}

target "meta" {
  context = "examples/Dockerfiles/meta"
  contexts = {
    busybox = "oci-layout://${BASES}/busybox:latest"
    golang  = "oci-layout://${BASES}/golang:latest"
  }
  output = ["type=oci2,name=${NAME_PREFIX}meta"]
}

# buildkitd-oci2 with runc, buildctl and the oci2 CLI inside, on a Debian
# base (moby/buildkit's image pattern). Go modules come through GOPROXY
# and runc through the base's apt sources.
target "buildkitd-oci2" {
  context    = "."
  dockerfile = "cmd/buildkitd-oci2/Dockerfile"
  contexts = {
    golang = "oci-layout://${BASES}/golang:latest"
    debian = "oci-layout://${BASES}/debian:latest"
  }
  args   = { GOPROXY = GOPROXY }
  output = ["type=oci2,name=oci2/buildkitd-oci2"]
}

# The # syntax= Dockerfile frontend (frontend/) as an ordinary OCI image, for
# stock BuildKit daemons too: `make frontend-bin` builds the two static
# binaries into bin/frontend, the context here, so nothing is pulled. Any
# builder builds it (`docker buildx bake frontend`); set FRONTEND_OUTPUT to
# push it (type=image,name=127.0.0.1:5000/oci2/dockerfile:1,push=true) or,
# on buildkitd-oci2, to store it as OCIv2 (type=oci2,name=oci2/dockerfile:1).
target "frontend" {
  context    = "bin/frontend"
  dockerfile = "../../frontend/Dockerfile"
  output     = [FRONTEND_OUTPUT]
}
