# Tapio — otelcol-tapio, a custom OpenTelemetry Collector distribution.
# `make run` sets everything up and runs the collector; `make test` runs every test.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO          ?= go
BIN_DIR     := $(CURDIR)/bin
BUILD_DIR   := $(CURDIR)/_build
OTELCOL     := $(BUILD_DIR)/otelcol-tapio
BUILDER     := $(BIN_DIR)/builder
BUILDER_VERSION := v0.145.0
# As root, the whole standalone distribution (kernel probes included); otherwise the same without
# the ebpf receiver, which needs CAP_BPF and CAP_PERFMON.
RUN_CONFIG  ?= $(if $(filter 0,$(shell id -u)),distributions/standalone/config.yaml,distributions/apps-only/config.yaml)
GO_MIN      := 1.24

# Everything the distribution is built from: a change to any of it rebuilds the binary.
# test/rca and test/load are modules of their own (the RCA suite, the load test): their changes do
# not rebuild the distribution.
GO_SOURCES  := $(shell find . -name '*.go' -not -path './_build/*' -not -path './bin/*' -not -path './test/rca/*' -not -path './test/load/*' 2>/dev/null) go.mod go.sum

.PHONY: build run demo test unit-test e2e-build e2e-test generate check-generated lint bench fuzz fuzz-ci tools deps check-go clean rca rca-deps loadtest flood

check-go:
	@command -v $(GO) >/dev/null || { echo "Go is required (>= $(GO_MIN)): https://go.dev/doc/install" >&2; exit 1; }

tools: $(BUILDER)

$(BUILDER): | check-go
	GOBIN=$(BIN_DIR) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(BUILDER_VERSION)

build: $(OTELCOL)

$(OTELCOL): builder-config.yaml $(GO_SOURCES) | $(BUILDER)
	$(BUILDER) --config builder-config.yaml
	@touch $@

CLI        := $(BUILD_DIR)/tapio-cli
DEMO_DIR   := $(BUILD_DIR)/demo
DEMO_BINS  := $(DEMO_DIR)/checkout $(DEMO_DIR)/payment $(DEMO_DIR)/ledger-db

$(CLI): $(GO_SOURCES) | check-go
	$(GO) build -o $@ ./cmd/tapio-cli

$(DEMO_DIR)/ledger-db: $(GO_SOURCES) | check-go
	$(GO) build -o $@ ./demo/ledgerdb
$(DEMO_DIR)/%: $(GO_SOURCES) | check-go
	$(GO) build -o $@ ./demo/$*

# The README's story, for real: the kernel OOM-kills ledger-db and Tapio explains the failed
# checkouts. Needs root (eBPF, memory cgroup).
demo: deps $(OTELCOL) $(CLI) $(DEMO_BINS)
	$(GO) run ./demo/tapio-demo -bin $(BUILD_DIR) -config distributions/standalone/config.yaml -config demo/shop.yaml

run: $(OTELCOL) $(CLI)
	@mkdir -p $${TAPIO_DATA_DIR:-./_data}
	@[ "$$(id -u)" = 0 ] || echo "not root: running without kernel probes ($(RUN_CONFIG)); sudo make run for the whole distribution"
	$(OTELCOL) --config $(RUN_CONFIG)

# Unit tests under the race detector (kernel tests included: they need root, and skip without it
# unless TAPIO_REQUIRE_EBPF=1), then the end-to-end tests against the built binary. The stages run
# in order, each as its own make; the first failure stops the run, and how long each stage took
# is printed at the end either way, because CI budgets are stated per stage.
TEST_STAGES := deps check-generated unit-test fuzz-ci e2e-build e2e-test rca

test:
	@status=0; summary=""; since() { local ms=$$(( ($$(date +%s%N) - $$1) / 1000000 )); printf '%6d.%d s' $$((ms / 1000)) $$((ms % 1000 / 100)); }; \
	begin=$$(date +%s%N); \
	for stage in $(TEST_STAGES); do \
	  if [ $$status -ne 0 ]; then summary+=$$(printf '\n  %-16s %10s  not run' "$$stage" -); continue; fi; \
	  echo "==> make $$stage"; start=$$(date +%s%N); \
	  if $(MAKE) --no-print-directory "$$stage"; then result=ok; else result=FAILED; status=1; fi; \
	  summary+=$$(printf '\n  %-16s %s  %s' "$$stage" "$$(since $$start)" "$$result"); \
	done; \
	printf '==> make test: time per stage%s\n  %-16s %s\n' "$$summary" total "$$(since $$begin)"; \
	exit $$status

unit-test: | check-go
	$(GO) test -race -count=1 ./...

# What the end-to-end tests run: the distribution built with OCB, the CLI and the demo services.
e2e-build: $(OTELCOL) $(CLI) $(DEMO_BINS)

e2e-test: $(OTELCOL) $(CLI) $(DEMO_BINS)
	TAPIO_COLLECTOR_BIN=$(OTELCOL) TAPIO_CLI_BIN=$(CLI) TAPIO_DEMO_BIN=$(DEMO_DIR) $(GO) test -tags e2e -count=1 ./test/e2e/...

# The RCA suite (test/rca): real faults on PostgreSQL, Redis and nginx from Debian's packages,
# watched by the built collector; scored against the fault each run injected. Needs root.
# RCA_N runs per scenario, RCA_RUN a scenario-name regexp, RCA_STRICT=0 reports without failing.
RCA_N       ?= 2
RCA_STRICT  ?= 1
RCA_RUN     ?=
RCA_DIR     := $(BUILD_DIR)/rca
RCA_SOURCES := $(shell find test/rca -name '*.go' -not -path '*/node_modules/*' 2>/dev/null) test/rca/go.mod test/rca/go.sum

rca-deps:
	test/rca/deps.sh

$(RCA_DIR)/rca: $(RCA_SOURCES) | check-go
	cd test/rca && $(GO) build -o $(RCA_DIR)/ ./cmd/rca ./cmd/catalog
	@touch $@ $(RCA_DIR)/catalog

rca: rca-deps $(OTELCOL) $(RCA_DIR)/rca
	$(RCA_DIR)/rca -n $(RCA_N) -strict=$(if $(filter 0,$(RCA_STRICT)),false,true) -run '$(RCA_RUN)' \
	  -collector $(OTELCOL) -catalog $(RCA_DIR)/catalog -results $(RCA_DIR)/results

# The load test (test/load, docs/BENCHMARKS.md): the built binary under load from telemetrygen and
# the module's own generator (OpenTelemetry Go SDK, export latency measured), Tapio's shipped
# pipeline side by side with a pass-through one. Not part of make test: it takes minutes and wants
# a quiet machine. LOAD_DURATION is each run's window; LOAD selects loads (comma-separated) or
# flood; LOAD_RATE the fixed rate both pipelines must sustain; LOAD_MODES the kinds of run (fixed,
# senders, unlimited = capacity on one core). The kernel load needs root.
# Ports 28100-28199.
TELEMETRYGEN         := $(BIN_DIR)/telemetrygen
TELEMETRYGEN_VERSION := v0.145.0
LOAD_DIR      := $(BUILD_DIR)/loadtest
LOAD_SOURCES  := $(shell find test/load -name '*.go' 2>/dev/null) test/load/go.mod test/load/go.sum
LOAD_DURATION ?= 15s
LOAD_WARMUP   ?= 3s
LOAD_RATE     ?= 30000
LOAD_MODES    ?= fixed,senders,unlimited
# Rounds of each load's runs, interleaved; the report takes the median run of each.
LOAD_REPEAT   ?= 1
LOAD          ?= healthy,storm,errorlogs,kernel,tg-healthy,tg-storm
FLOOD_DURATION ?= 60s
# e.g. GOMEMLIMIT=800MiB: extra environment of every collector the load test starts.
LOAD_COLLECTOR_ENV ?=

$(TELEMETRYGEN): | check-go
	GOBIN=$(BIN_DIR) $(GO) install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@$(TELEMETRYGEN_VERSION)

$(LOAD_DIR)/loadtest: $(LOAD_SOURCES) | check-go
	cd test/load && $(GO) build -o $(LOAD_DIR)/ ./cmd/loadtest ./cmd/loadgen
	@touch $@ $(LOAD_DIR)/loadgen

loadtest: $(OTELCOL) $(TELEMETRYGEN) $(LOAD_DIR)/loadtest
	$(LOAD_DIR)/loadtest -collector $(OTELCOL) -telemetrygen $(TELEMETRYGEN) -loadgen $(LOAD_DIR)/loadgen \
	  -shipped distributions/standalone/config.yaml -load-dir test/load -out $(LOAD_DIR) \
	  -commit "$$(git rev-parse --short HEAD)$$(git diff --quiet HEAD -- . 2>/dev/null || echo -dirty)" \
	  -loads '$(LOAD)' -duration $(LOAD_DURATION) -warmup $(LOAD_WARMUP) -rate $(LOAD_RATE) -modes '$(LOAD_MODES)' -repeat $(LOAD_REPEAT) -flood-duration $(FLOOD_DURATION) \
	  -collector-env '$(LOAD_COLLECTOR_ENV)'

flood:
	$(MAKE) --no-print-directory loadtest LOAD=flood

# What kernel work needs: clang/libbpf/bpftool to compile the eBPF programs (make generate), and
# nftables for the kernel tests that drop packets. Installed with apt-get when missing and root.
KERNEL_TOOLS := clang:clang bpftool:bpftool nft:nftables
deps:
	@missing=""; for pair in $(KERNEL_TOOLS); do cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null || missing="$$missing $$pkg"; done; \
	  [ -f /usr/include/bpf/bpf_helpers.h ] || missing="$$missing libbpf-dev"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    else echo "missing:$$missing (install them, e.g. apt-get install$$missing)" >&2; exit 1; fi; \
	  fi

generate: deps | check-go
	$(GO) generate ./...

# CI regenerates the eBPF objects, the schema document, the correlation connector's scenario goldens
# and the correlation records they produce (testdata/, read by the impact exporter's tests), and
# fails when the committed ones differ or a generated file is not committed.
GENERATED := receiver/ebpfreceiver/internal/kernel docs testdata connector/correlationconnector/testdata
check-generated: generate
	@git diff --exit-code -- $(GENERATED) || { echo "generated files are stale: run make generate and commit" >&2; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- $(GENERATED)); \
	  if [ -n "$$untracked" ]; then echo "generated files are not committed:" $$untracked >&2; exit 1; fi

lint: | check-go
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:" $$unformatted >&2; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/...
	@scripts/check-pins.sh

# One core, as the performance targets are stated per core.
bench: | check-go
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./...

# Every decoder of outside input, as name:package:executions. The executions are make test's budget
# (about 5 s each here): a count, not a duration, because with -fuzztime as a duration Go 1.26's
# coordinator can report "context deadline exceeded" as a failure when the time runs out while a
# worker is busy (go.dev/issue/75804, fixed in Go 1.27) -- on a loaded machine, with no input to
# blame. `make fuzz` explores for FUZZTIME per target instead.
FUZZ_TARGETS := \
  FuzzKubernetesEventMapping:./processor/unifiedeventprocessor:150000 \
  FuzzReadCorrelationRecord:./pkg/unifiedevent:150000 \
  FuzzListQuery:./exporter/impactexporter:30000 \
  FuzzRingBufferRecord:./receiver/ebpfreceiver:100000 \
  FuzzOTLPIntoUnifiedEvents:./processor/unifiedeventprocessor:100000 \
  FuzzDecodeWALEntry:./connector/correlationconnector:100000
FUZZTIME ?= 30s
# FUZZ_BY_COUNT=1 runs each target for its executions instead of FUZZTIME.
FUZZ_BY_COUNT ?=
fuzz: | check-go
	@for target in $(FUZZ_TARGETS); do \
	  IFS=: read -r name pkg count <<<"$$target"; \
	  budget=$(if $(FUZZ_BY_COUNT),$${count}x,$(FUZZTIME)); \
	  echo "$(GO) test -run '^$$' -fuzz '^$$name\$$' -fuzztime $$budget $$pkg"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime "$$budget" "$$pkg"; \
	done

# make test fuzzes every decoder of outside input for a bounded number of executions.
fuzz-ci:
	$(MAKE) --no-print-directory fuzz FUZZ_BY_COUNT=1

clean:
	rm -rf $(BUILD_DIR) $(BIN_DIR)
