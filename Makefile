# procfleet's build. `make run` and `make test` work on a machine that has
# only Go: the pinned VictoriaMetrics, node_exporter and Prometheus the tests and the
# dev setup need are built from the Go module proxy into bin/ once and reused.

GO        ?= go
BIN       := $(CURDIR)/bin
VM_VERSION := v1.151.0
NE_VERSION := v1.12.1
PROM_VERSION := v0.316.0
STATICCHECK_VERSION := v0.8.2
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
TEST_FLAGS ?= -race -timeout 20m
BENCH_COUNT ?= 6

.PHONY: build run test bench bench-e2e bench-fleet bench-scrape lint tools fuzz clean

# bin/procfleet is the binary that runs on hosts (`make bench-e2e`, the
# benchmarks, `procfleet install`): static (no cgo, so no libc and no
# pthread stacks), without `procfleet dev`'s embedded etcd server
# (-tags nodev) and without symbol tables. Each of the three costs every
# agent resident memory; docs/performance.md has the figures.
# bin/procfleet-dev is the same program with the embedded etcd, which
# `make run` runs as `procfleet dev`.
build:
	CGO_ENABLED=0 $(GO) build -tags nodev -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN)/procfleet ./cmd/procfleet

.PHONY: build-dev
build-dev:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/procfleet-dev ./cmd/procfleet

# Stamp files carry the version so that bumping a pin rebuilds the binary.
# A build from the Go module proxy is tried twice (10 s apart) before it
# fails: a transient proxy error must not fail a whole CI run.
retry = $(1) || { echo "$(2) failed; trying once more in 10s" >&2; sleep 10; $(1); }
goinstall = $(call retry,GOBIN=$(BIN) $(GO) install $(1),go install $(1))

$(BIN)/.victoria-metrics-$(VM_VERSION):
	$(call goinstall,github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@$(VM_VERSION))
	touch $@

$(BIN)/.vmagent-$(VM_VERSION):
	$(call goinstall,github.com/VictoriaMetrics/VictoriaMetrics/app/vmagent@$(VM_VERSION))
	touch $@

$(BIN)/.node_exporter-$(NE_VERSION):
	$(call goinstall,github.com/prometheus/node_exporter@$(NE_VERSION))
	touch $@

# Prometheus itself, a remote-write receiver for the tests (1.0 and 2.0).
# Without the web UI's built assets, which the tests do not use; about 17
# minutes the first time on 2 busy cores.
$(BIN)/.prometheus-$(PROM_VERSION):
	$(call goinstall,github.com/prometheus/prometheus/cmd/prometheus@$(PROM_VERSION))
	touch $@

$(BIN)/.staticcheck-$(STATICCHECK_VERSION):
	$(call goinstall,honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION))
	touch $@

$(BIN)/.benchstat-$(BENCHSTAT_VERSION):
	$(call goinstall,golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION))
	touch $@

tools: $(BIN)/.victoria-metrics-$(VM_VERSION) $(BIN)/.node_exporter-$(NE_VERSION) $(BIN)/.vmagent-$(VM_VERSION) $(BIN)/.prometheus-$(PROM_VERSION)

# The main job: VictoriaMetrics on 127.0.0.1:8428 and an agent for this host.
# It builds what it runs, procfleet and VictoriaMetrics, not node_exporter
# (the tests' oracle), and says so first: with empty Go caches the first
# run downloads and compiles for about RUN_FIRST_TIME (measured in
# README.md), later ones take seconds.
RUN_FIRST_TIME := 7 minutes on 2 busy cores
.PHONY: run-say
run-say:
	@if [ -f $(BIN)/.victoria-metrics-$(VM_VERSION) ]; then \
	  echo "make run: building bin/procfleet-dev (seconds once the Go build cache is warm)"; \
	else \
	  echo "make run: building bin/procfleet-dev, then VictoriaMetrics $(VM_VERSION) into bin/ with go install;"; \
	  echo "  the first time, with empty Go caches, this downloads and compiles for about $(RUN_FIRST_TIME);"; \
	  echo "  go prints nothing while it compiles. Later runs reuse bin/ and take seconds."; \
	fi
run: run-say build-dev $(BIN)/.victoria-metrics-$(VM_VERSION)
	$(BIN)/procfleet-dev dev --victoria-metrics $(BIN)/victoria-metrics

# The second step is internal/promoracle, a nested test-only module that
# checks prom/relabel against Prometheus itself; `go test ./...` at the
# root skips it, so that the main module never depends on Prometheus.
test: build tools
	$(GO) test $(TEST_FLAGS) ./...
	cd internal/promoracle && $(GO) test $(TEST_FLAGS) ./...

# Micro-benchmarks, BENCH_COUNT runs each, summarised by benchstat.
bench: tools $(BIN)/.benchstat-$(BENCHSTAT_VERSION)
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) ./... | tee bench.txt
	$(BIN)/benchstat bench.txt

# Side by side on this machine: the agent against node_exporter scraped by
# vmagent, each into its own VictoriaMetrics (bench/e2e). JSON on stdout.
BENCH_E2E_FLAGS ?=
bench-e2e: build tools $(BIN)/.vmagent-$(VM_VERSION)
	$(GO) run ./bench/e2e -bin $(BIN) $(BENCH_E2E_FLAGS)

# Scraping side by side (bench/scrape): procfleet (a clustered agent with
# no /proc generators, its job in an embedded etcd) and vmagent scrape the
# same 1,000 local targets × 1,000 series every 10 s, each into its own
# VictoriaMetrics. Not part of `make test`. JSON on stdout; figures in
# docs/performance.md.
BENCH_SCRAPE_FLAGS ?=
bench-scrape: build tools $(BIN)/.vmagent-$(VM_VERSION)
	$(GO) run ./bench/scrape -bin $(BIN) $(BENCH_SCRAPE_FLAGS)

# A simulated fleet (bench/fleet): N real cluster members (1,000, 3,000,
# 10,000, as far as the machine goes) against three etcd server processes
# built into bin/ from go.mod's etcd; steady-state load, config rollout,
# a rolling restart, and etcd faults at 3,000. Not part of `make test`.
# JSON on stdout; figures in docs/performance.md.
ETCD_VERSION = $(shell $(GO) list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
$(BIN)/.etcd-%:
	$(call retry,CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/etcd go.etcd.io/etcd/server/v3,building etcd)
	touch $@
BENCH_FLEET_FLAGS ?=
.PHONY: bench-fleet
bench-fleet: $(BIN)/.etcd-$(ETCD_VERSION)
	$(GO) run ./bench/fleet -bin $(BIN) $(BENCH_FLEET_FLAGS)

# The relay under hostile load for 10 minutes (bench/soak): 50 clients
# sending a byte a second, 8 agents pushing once a second, the token file
# rotated every 30s, into a real VictoriaMetrics. Fails when the agents'
# p99 import latency reaches 200ms, the relay's RSS 256MiB, or a sample the
# relay acknowledged is missing. Not part of `make test`, which runs 25s of
# it (bench/soak's TestSoakShort). JSON on stdout.
SOAK_FLAGS ?=
.PHONY: soak
soak: build tools
	$(GO) run ./bench/soak -bin $(BIN) -check $(SOAK_FLAGS)

# Each fuzz target for FUZZTIME (default 20s).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

lint: $(BIN)/.staticcheck-$(STATICCHECK_VERSION)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags nodev ./cmd/procfleet
	cd internal/promoracle && $(GO) vet ./...
	$(BIN)/staticcheck ./...

clean:
	rm -rf $(BIN) tmp build bench.txt

# The container image (deploy/Dockerfile): a static binary and the build
# host's CA bundle in a scratch image, tagged procfleet:$(VERSION) and
# procfleet:dev. The context is build/image/; nothing is pulled.
IMAGE     ?= procfleet
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
.PHONY: image
image:
	rm -rf build/image
	mkdir -p build/image
	CGO_ENABLED=0 $(GO) build -tags nodev -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o build/image/procfleet ./cmd/procfleet
	cp $(CA_BUNDLE) build/image/ca-certificates.crt
	docker build --pull=false -f deploy/Dockerfile -t $(IMAGE):$(VERSION) -t $(IMAGE):dev build/image

# The demo cluster of deploy/compose (three etcd, two VictoriaMetrics, a
# relay, three agents), from images built here: nothing is pulled. The
# compose project is $COMPOSE_PROJECT_NAME when set, else procfleet-
# and 8 hex digits of a hash of this checkout's path, so that two
# checkouts on one machine each start, test and tear down their own
# cluster: `down` removes only this project's containers, network and
# volumes.
COMPOSE ?= docker-compose
COMPOSE_FILE := deploy/compose/docker-compose.yml
COMPOSE_PROJECT_NAME ?= procfleet-$(shell printf '%s' '$(CURDIR)' | sha256sum | cut -c1-8)
export COMPOSE_PROJECT_NAME
compose = $(COMPOSE) -f $(COMPOSE_FILE) -p $(COMPOSE_PROJECT_NAME)
.PHONY: compose-images up down
compose-images: image
	rm -rf build/compose
	mkdir -p build/compose/etcd build/compose/victoria-metrics
	$(call retry,CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o build/compose/etcd/etcd go.etcd.io/etcd/server/v3,building etcd)
	$(call retry,CGO_ENABLED=0 GOBIN=$(CURDIR)/build/compose/victoria-metrics $(GO) install -trimpath -ldflags "-s -w" github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@$(VM_VERSION),building VictoriaMetrics)
	docker build --pull=false -f deploy/compose/Dockerfile.etcd -t procfleet-etcd:dev build/compose/etcd
	docker build --pull=false -f deploy/compose/Dockerfile.victoria-metrics -t procfleet-victoria-metrics:dev build/compose/victoria-metrics

# Published on 127.0.0.1:12379 (etcd1), :18428 and :18429 (vm1, vm2);
# PROCFLEET_ETCD_PORT, PROCFLEET_VM1_PORT and PROCFLEET_VM2_PORT move them.
up: compose-images compose-tool
	$(compose) up -d

down: compose-tool
	$(compose) down -v

# need installs Debian's package $(2) when the command $(1) is missing:
# as root with apt-get (reading the package lists again when the package
# is not in them, as on a fresh machine); as another user it says what to
# install.
need = command -v $(1) >/dev/null 2>&1 || { \
	if [ "$$(id -u)" != 0 ]; then echo "$(1) not found: install Debian's package $(2) (apt-get install $(2)), or run make as root" >&2; exit 1; fi; \
	echo "$(1) not found: apt-get install -y $(2)"; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y $(2) || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(2); }; }

.PHONY: compose-tool
compose-tool:
	@docker info >/dev/null 2>&1 || { echo "no Docker engine answers (docker info failed); the demo cluster needs one" >&2; exit 1; }
	@if [ "$(COMPOSE)" = docker-compose ]; then $(call need,docker-compose,docker-compose); fi

# End-to-end tests against the demo cluster (e2e/, build tag e2e). What
# starts nothing comes first (the systemd image, the compose images); then
# the cluster is started on ports Docker picks, so that it never collides
# with another checkout's or with `make up`'s, tested, and torn down
# whatever failed, `up` included: the trap removes the systemd test's
# container and runs `down`, both named after this checkout's project.
.PHONY: e2e
e2e: systemd-image compose-images compose-tool
	@echo "e2e: compose project $(COMPOSE_PROJECT_NAME)"; \
	teardown() { status=$$?; trap - EXIT; \
	  echo "e2e: tearing down compose project $(COMPOSE_PROJECT_NAME)"; \
	  docker rm -f $(COMPOSE_PROJECT_NAME)-e2e-systemd >/dev/null 2>&1 || true; \
	  $(compose) down -v --remove-orphans || status=1; \
	  exit $$status; }; \
	trap teardown EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	PROCFLEET_ETCD_PORT= PROCFLEET_VM1_PORT= PROCFLEET_VM2_PORT= $(compose) up -d && \
	$(GO) test -tags e2e -count=1 -v -timeout 20m ./e2e

# A Debian root with systemd as PID 1, imported as $(SYSTEMD_IMAGE), in
# which e2e/systemd_test.go runs `procfleet install` under a real systemd.
# debootstrap (Debian's package, installed when missing; run as root)
# builds it, about 240 MB in a minute or two, from DEBIAN_MIRROR: by
# default the Debian archive this machine's own apt sources name
# (e2e/debian-mirror.sh), so that no mirror host is written in here. The
# stamp, named after the suite and the packages, skips that while the
# image is still there.
SYSTEMD_IMAGE    ?= procfleet-systemd:dev
SYSTEMD_SUITE    ?= bookworm
SYSTEMD_PACKAGES := systemd,systemd-sysv,dbus
DEBIAN_MIRROR    ?= $(shell sh e2e/debian-mirror.sh $(SYSTEMD_SUITE))
comma            := ,
SYSTEMD_STAMP    := build/systemd/.image-$(SYSTEMD_SUITE)-$(subst $(comma),-,$(SYSTEMD_PACKAGES))
.PHONY: systemd-image
systemd-image:
	@if [ -f $(SYSTEMD_STAMP) ] && docker image inspect $(SYSTEMD_IMAGE) >/dev/null 2>&1; then \
	  echo "$(SYSTEMD_IMAGE): up to date ($(SYSTEMD_STAMP))"; exit 0; \
	fi; \
	$(call need,debootstrap,debootstrap); \
	mirror='$(DEBIAN_MIRROR)'; \
	if [ -z "$$mirror" ]; then \
	  echo "no Debian archive serving $(SYSTEMD_SUITE) in this machine's apt sources; set DEBIAN_MIRROR=URL" >&2; exit 1; \
	fi; \
	echo "$(SYSTEMD_IMAGE): debootstrap $(SYSTEMD_SUITE) from $$mirror (about 240 MB, a minute or two)"; \
	set -ex; rm -rf build/systemd; mkdir -p build/systemd; \
	trap 'rm -rf build/systemd/rootfs' EXIT; \
	debootstrap --variant=minbase --include=$(SYSTEMD_PACKAGES) $(SYSTEMD_SUITE) build/systemd/rootfs "$$mirror"; \
	tar -C build/systemd/rootfs -c . | docker import \
	  -c 'CMD ["/lib/systemd/systemd"]' - $(SYSTEMD_IMAGE); \
	touch $(SYSTEMD_STAMP)
