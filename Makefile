# deploylens — build, run and test the distribution. Needs only Go; tools are
# installed, pinned, into ./bin on first use.

SHELL := /bin/bash
GO ?= go
OCB_VERSION := v0.165.0
BIN := $(CURDIR)/bin
OCB := $(BIN)/ocb-$(OCB_VERSION)
MDATAGEN := $(BIN)/mdatagen
GOLANGCI_LINT := $(BIN)/golangci-lint
TELEMETRYGEN := $(BIN)/telemetrygen
DIST := $(CURDIR)/_build/otelcol-deploylens
CONFIG ?= deploy/default-config.yaml
IMAGE ?= ghcr.io/deploylens/otelcol-deploylens:0.1.0
FUZZTIME ?= 5s
FUZZ_PKGS := ./receiver/deploymentreceiver ./internal/deployevent ./exporter/deploymentexporter ./processor/deploymentprocessor
# Every component directory with an mdatagen metadata.yaml.
COMPONENT_DIRS := $(sort $(dir $(shell find receiver processor exporter -name metadata.yaml -not -path '*/internal/*' 2>/dev/null)))

.PHONY: help all build run test unit e2e k8s image fuzz generate generate-check lint bench nab demo tools clean detect-bench detect-e2e soak bench-e2e bench-receiver

all: build

## help: this list of targets
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

$(OCB):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)
	mv $(BIN)/builder $(OCB)

# mdatagen is pinned in the tools module (internal/tools/go.mod) and built with go build.
$(MDATAGEN): internal/tools/go.mod internal/tools/go.sum
	@mkdir -p $(BIN)
	cd internal/tools && $(GO) build -o $(MDATAGEN) go.opentelemetry.io/collector/cmd/mdatagen

# golangci-lint has a tools module of its own, so its dependencies never move mdatagen's.
$(GOLANGCI_LINT): internal/tools/lint/go.mod internal/tools/lint/go.sum
	@mkdir -p $(BIN)
	cd internal/tools/lint && $(GO) build -o $(GOLANGCI_LINT) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

# telemetrygen (contrib v0.161.0) is the OTLP client of the end-to-end tests; own tools module too.
$(TELEMETRYGEN): internal/tools/telemetrygen/go.mod internal/tools/telemetrygen/go.sum
	@mkdir -p $(BIN)
	cd internal/tools/telemetrygen && $(GO) build -o $(TELEMETRYGEN) github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen

tools: $(OCB) $(MDATAGEN) $(GOLANGCI_LINT) $(TELEMETRYGEN)

## build: the distribution, with ocb, into _build/otelcol-deploylens
build: $(OCB)
	$(OCB) --config builder-config.yaml

## run: build and start the collector on the default localhost-only config
run: build
	$(DIST) --config $(CONFIG)

## test: the whole suite — unit tests, end-to-end tests against the built binary, brief fuzzing
test: build unit k8s fuzz

E2E_ENV := DEPLOYLENS_BINARY=$(DIST) TELEMETRYGEN=$(TELEMETRYGEN) OCB=$(OCB)

unit: $(TELEMETRYGEN)
	$(E2E_ENV) $(GO) test -count=1 -timeout 30m ./...

e2e: build $(TELEMETRYGEN)
	$(E2E_ENV) $(GO) test -count=1 -run 'E2E' -v ./internal/e2e/...

## k8s: the Kubernetes manifests and Helm values (internal/tools/k8s, its own module): strict decoding, references, `validate` of every config, the three tiers on loopback
k8s: build
	cd internal/tools/k8s && DEPLOYLENS_BINARY=$(DIST) $(GO) test -count=1 ./...

## image: the container image (needs Docker)
image:
	docker build -t $(IMAGE) .

## fuzz: every fuzz target for FUZZTIME (default 5s) each
fuzz:
	@set -e; for pkg in $(FUZZ_PKGS); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## generate: mdatagen for every component
generate: $(MDATAGEN)
	@set -e; for dir in $(COMPONENT_DIRS); do \
	  echo "mdatagen $$dir"; (cd $$dir && $(MDATAGEN) metadata.yaml); \
	done

## generate-check: fail when generated files are not what mdatagen writes now
generate-check: generate
	@if [ -n "$$(git status --porcelain -- receiver processor exporter)" ]; then \
	  echo "generated files are stale; run 'make generate' and commit:"; \
	  git status --porcelain -- receiver processor exporter; exit 1; \
	fi

## lint: gofmt, go vet and golangci-lint (.golangci.yml)
lint: $(GOLANGCI_LINT)
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '/internal/metadata/')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./...
	cd internal/tools/k8s && $(GO) vet ./...
	cd internal/tools/k8s && $(GOLANGCI_LINT) run --config $(CURDIR)/.golangci.yml ./...
	$(GOLANGCI_LINT) run ./...

## demo: build and run the collector with scenario traffic; watch http://localhost:8089/ as a deployment goes bad
demo: build
	$(GO) run ./cmd/deploylens-demo -binary $(DIST)

## nab: the processor's detector over the NAB subset in ../shared/nab, scored by its scorer at the
## shipped threshold (OUT/threshold.json) and at the scorer's optimum
NAB_DIR ?= $(CURDIR)/../shared/nab
NAB_OUT ?= $(CURDIR)/_build/nab-results
nab:
	rm -rf $(NAB_OUT)
	$(GO) run ./cmd/nabrun -data $(NAB_DIR)/data -out $(NAB_OUT)
	@threshold=$$(sed -n 's/.*"threshold": *\([0-9.eE+-]*\).*/\1/p' $(NAB_OUT)/threshold.json); \
	  echo "standard score at the shipped threshold $$threshold (detector.AnomalyThreshold):"; \
	  cd $(NAB_DIR) && $(GO) run main.go -profile standard -v -threshold $$threshold $(NAB_OUT) && \
	  echo "and at the scorer's optimum threshold:" && \
	  $(GO) run main.go -v $(NAB_OUT)

## nab-loco: choose the detector's constants by leave-one-category-out over the NAB subset
NAB_LOCO_OUT ?= $(CURDIR)/_build/nab-loco
.PHONY: nab-loco
nab-loco:
	$(GO) run ./cmd/nabrun -loco -data $(NAB_DIR)/data -scorer $(NAB_DIR)/main.go -out $(NAB_LOCO_OUT)

## detect-bench: the detection benchmark - the scenario library (internal/scenario) through the
## processor in simulated time, then its multi-service topologies; its eight figures (detected, false_alarms,
## delay_median_s, delay_p95_s, low_traffic_false_alarms, alerts_per_faulty_deployment, impact_detected,
## impact_misattributed) come last. DETECT_FLAGS=-detect.verbose prints one line per scenario.
DETECT_SEED ?= 1
DETECT_FLAGS ?=
DETECT_NAMES := detected|false_alarms|delay_median_s|delay_p95_s|low_traffic_false_alarms|alerts_per_faulty_deployment|impact_detected|impact_misattributed
DETECT_LINES := ^($(DETECT_NAMES)):
detect-bench:
	@out=$$($(GO) test -count=1 -timeout 30m -run '^$$' -bench '^BenchmarkDetect$$' -benchtime 1x \
	  ./processor/deploymentprocessor/ -args -detect.seed $(DETECT_SEED) $(DETECT_FLAGS)) || { echo "$$out"; exit 1; }; \
	echo "$$out" | grep -v -E '$(DETECT_LINES)'; \
	echo "$$out" | grep -E '$(DETECT_LINES)'

## detect-e2e: the library judged in real time through the built binary (cmd/detect-e2e): a subset of
## 51 deployments, two waves of many services at once, warm-ups fast-forwarded, rollouts in real time,
## alerts read from a real Alertmanager, scores from a real Prometheus, verdicts from the gate; about
## 15 minutes. Prints detect-bench's figures, then min_clean_score. DETECT_E2E_FLAGS=-per-cell 2 is shorter.
DETECT_E2E_FLAGS ?=
DETECT_E2E_LINES := ^($(DETECT_NAMES)|min_clean_score):
detect-e2e: build
	@out=$$($(GO) run ./cmd/detect-e2e -binary $(DIST) -seed $(DETECT_SEED) $(DETECT_E2E_FLAGS)) || { echo "$$out"; exit 1; }; \
	echo "$$out" | grep -v -E '$(DETECT_E2E_LINES)'; \
	echo "$$out" | grep -E '$(DETECT_E2E_LINES)'

## soak: the built binary for SOAK_DURATION (default 10m) under churn (cmd/soak): services appear and
## vanish (several times max_services over the run), deployments start and end all the time; prints
## the collector's RSS growth after warm-up, every state gauge against its limit, and
## firing_alerts_of_forgotten_services last; fails when growth > 5 %, a gauge passes its limit or N > 0.
## SOAK_FLAGS=-per-service 10000 measures memory per tracked service instead.
SOAK_DURATION ?= 10m
SOAK_FLAGS ?=
soak: build
	$(GO) build -o _build/soak ./cmd/soak
	_build/soak -binary $(DIST) -duration $(SOAK_DURATION) $(SOAK_FLAGS)

## bench-e2e: the built binary under a fixed OTLP load of traces and metrics (cmd/bench-e2e), the same config
## with and without the deployment processor: the collector's CPU seconds per million spans (its
## /proc/PID/stat only) and the highest sustained rate of a ramp; prints `ratio e2e cpu/without` and
## `max_spans_per_s with/without` last; fails when the ratio is above 1.10. BENCH_E2E_FLAGS=-cpu-for 15s -rounds 1 is shorter.
BENCH_E2E_FLAGS ?=
bench-e2e: build
	$(GO) build -o _build/bench-e2e ./cmd/bench-e2e
	_build/bench-e2e -binary $(DIST) $(BENCH_E2E_FLAGS)

## bench-receiver: webhook requests/s, p50/p99 latency and the collector's RSS at 1, 16 and 64
## concurrent clients on loopback (cmd/bench-receiver: Go clients, a signed GitHub deployment_status
## delivery); one `clients C:` line each. BENCH_RECEIVER_FLAGS=-duration 3s is shorter.
BENCH_RECEIVER_FLAGS ?=
bench-receiver: build
	$(GO) build -o _build/bench-receiver ./cmd/bench-receiver
	_build/bench-receiver -binary $(DIST) $(BENCH_RECEIVER_FLAGS)

## bench: the package benchmarks, then the comparative ones (bench/, its own module) with their ratio lines
BENCHTIME ?= 1s
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...
	cd bench && $(GO) run ./cmd/deploylens-bench

clean:
	rm -rf _build
