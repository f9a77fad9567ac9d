# The CI job's build (examples/ci/ci-build.sh runs it): the application
# in APP on the busybox base of examples/bases, pushed to
# REGISTRY/REPO:TAG as an OCIv2 image with a SLSA provenance (mode=max) and
# an SPDX SBOM attached, and a registry build cache shared by every run.
# OUTPUT_TYPE=image builds the same job as a layered tar+gzip image (the
# stock image exporter), for comparison.

variable "REGISTRY" {
  default = "127.0.0.1:5000"
}
variable "REPO" {
  default = "oci2-ci/app"
}
variable "TAG" {
  default = "latest"
}
variable "APP" {
  default = "examples/ci/app"
}
variable "BASES" {
  default = "examples/bases/out"
}
variable "SBOM_SCANNER" {
  # examples/ci/build-scanner.sh pushes it; docker/buildkit-syft-scanner
  # where it can be pulled
  default = "127.0.0.1:5000/oci2-ci/sbom-scanner:latest"
}
variable "OUTPUT_TYPE" {
  default = "oci2"
}
variable "SOURCE_DATE_EPOCH" {
  # the commit's time in a real job (git log -1 --format=%ct): the same
  # commit gives the same digest on any runner
  default = "1700000000"
}

target "app" {
  context  = APP
  contexts = { busybox = "oci-layout://${BASES}/busybox:latest" }
  args     = { SOURCE_DATE_EPOCH = SOURCE_DATE_EPOCH }
  output   = ["type=${OUTPUT_TYPE},name=${REGISTRY}/${REPO}:${TAG},push=true,rewrite-timestamp=true"]
  attest = [
    "type=provenance,mode=max",
    "type=sbom,generator=${SBOM_SCANNER}",
  ]
  cache-from = ["type=registry,ref=${REGISTRY}/${REPO}:cache-${OUTPUT_TYPE}"]
  cache-to   = ["type=registry,ref=${REGISTRY}/${REPO}:cache-${OUTPUT_TYPE},mode=max"]
}
