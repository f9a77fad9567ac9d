# oci2 developer targets. Everything here is also what CI runs (.ci/run).
#
#   make build        binaries into ./bin (oci2, buildkitd-oci2, ...)
#   make test         go vet, go mod tidy -diff + every Go test (integration tests in tests/ need root),
#                     then test-scanner: examples/ci/sbom-scanner, its own module (syft);
#                     GOTEST="gotestsum --jsonfile f --" runs them under gotestsum (.ci/run)
#   make fuzz         every go-fuzz target for FUZZTIME each
#   make corpus       build the ../shared/corpus trees into $(OCI2_CORPUS) (cached)
#   make bench        full benchmark on the corpus, writes bench/results/<date>.md
#                     (as root also the runc and containerd startup parts, minutes)
#   make bench-smoke  one small generated tree, every part but startup briefly (< 1 min)
#   make frontend-image  the # syntax= frontend image (frontend/) as an OCI
#                     layout in bin/frontend-image, built by the BuildKit at
#                     $BUILDKIT_HOST; FRONTEND_IMAGE=host/repo:tag also pushes it

GO          ?= go
BIN         ?= $(CURDIR)/bin
OCI2_CORPUS ?= /var/cache/oci2-corpus
CORPUS_SRC  ?= $(CURDIR)/../shared/corpus
# -p 2: the reference machine has 2 cores; the integration tests are heavy.
TEST_FLAGS  ?= -p 2 -timeout 60m
GOTEST      ?= $(GO) test
FUZZTIME    ?= 10s
BENCH_FLAGS ?=

export OCI2_CORPUS

.PHONY: all build test test-scanner vet fuzz corpus bench bench-deps bench-smoke frontend-bin frontend-image clean

all: build

build:
	mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

# tidy -diff: a module imported directly must be required directly.
vet:
	$(GO) vet ./...
	$(GO) mod tidy -diff

# Both run even when the first fails; either failing fails the target.
test: vet
	rc=0; $(GOTEST) $(TEST_FLAGS) ./... || rc=1; $(MAKE) test-scanner || rc=1; exit $$rc

# examples/ci/sbom-scanner is its own module (syft's dependency tree stays
# out of go.mod), so ./... does not reach it: vet and test it on its own.
# Plain go test: a second gotestsum would overwrite .ci/run's --jsonfile.
test-scanner:
	cd examples/ci/sbom-scanner && $(GO) vet ./... && $(GO) test $(TEST_FLAGS) ./...

# One fuzz target per `go test -fuzz` call (go refuses patterns matching several);
# scripts/fuzz.sh ignores the go1.26 -fuzztime shutdown race (go.dev/issue/75804).
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

corpus:
	$(CORPUS_SRC)/build-all.sh $(OCI2_CORPUS)

# The comparison tools (Debian packages); skipped by the bench when absent.
BENCH_PKGS ?= restic borgbackup casync umoci zstd
bench-deps:
	@missing=$$(for p in $(BENCH_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; fi

# buildctl, the registry, containerd and ctr (scripts/build-tools.sh,
# idempotent) drive the exporter, registry and startup parts; buildkitd-oci2
# and oci2-snapshotter come from `build`.
bench: build corpus bench-deps
	BIN=$(BIN) bash scripts/build-tools.sh >/dev/null
	PATH=$(BIN):$$PATH $(GO) run ./bench -bin $(BIN) -corpus $(OCI2_CORPUS) -out bench/results $(BENCH_FLAGS)

# Scenarios whose tools are missing (buildctl, registry, root) are skipped;
# the startup parts (runc, containerd: minutes) are left out.
bench-smoke: build
	$(GO) run ./bench -bin $(BIN) -smoke -out $${TMPDIR:-/tmp}/oci2-bench-smoke $(BENCH_FLAGS)

# The frontend image is an ordinary OCI image (it must run on stock
# BuildKit): FROM scratch plus the two static binaries built here, so
# nothing is pulled. docker-bake.hcl's "frontend" target builds the same.
FRONTEND_BIN    ?= $(BIN)/frontend
FRONTEND_LAYOUT ?= $(BIN)/frontend-image
FRONTEND_IMAGE  ?=

frontend-bin:
	mkdir -p $(FRONTEND_BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(FRONTEND_BIN)/ ./frontend/cmd/dockerfile-oci2 ./cmd/oci2

frontend-image: frontend-bin
	buildctl build --frontend dockerfile.v0 --local context=$(FRONTEND_BIN) --local dockerfile=frontend \
		--output type=oci,dest=$(FRONTEND_LAYOUT),tar=false \
		$(if $(FRONTEND_IMAGE),--output type=image$(comma)name=$(FRONTEND_IMAGE)$(comma)push=true)

comma := ,

clean:
	rm -rf $(BIN)
