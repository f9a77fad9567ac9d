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

.PHONY: all build test test-scanner vet fuzz corpus bench bench-deps bench-smoke clean

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

clean:
	rm -rf $(BIN)
