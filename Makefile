# procfleet's build. `make run` and `make test` work on a machine that has
# only Go: the pinned VictoriaMetrics and node_exporter the tests and the
# dev setup need are built from the Go module proxy into bin/ once and reused.

GO        ?= go
BIN       := $(CURDIR)/bin
VM_VERSION := v1.151.0
NE_VERSION := v1.12.1
STATICCHECK_VERSION := v0.8.2
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
TEST_FLAGS ?= -race -timeout 20m
BENCH_COUNT ?= 6

.PHONY: build run test bench bench-e2e lint tools fuzz clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/procfleet ./cmd/procfleet

# Stamp files carry the version so that bumping a pin rebuilds the binary.
$(BIN)/.victoria-metrics-$(VM_VERSION):
	GOBIN=$(BIN) $(GO) install github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@$(VM_VERSION)
	touch $@

$(BIN)/.vmagent-$(VM_VERSION):
	GOBIN=$(BIN) $(GO) install github.com/VictoriaMetrics/VictoriaMetrics/app/vmagent@$(VM_VERSION)
	touch $@

$(BIN)/.node_exporter-$(NE_VERSION):
	GOBIN=$(BIN) $(GO) install github.com/prometheus/node_exporter@$(NE_VERSION)
	touch $@

$(BIN)/.staticcheck-$(STATICCHECK_VERSION):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	touch $@

$(BIN)/.benchstat-$(BENCHSTAT_VERSION):
	GOBIN=$(BIN) $(GO) install golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)
	touch $@

tools: $(BIN)/.victoria-metrics-$(VM_VERSION) $(BIN)/.node_exporter-$(NE_VERSION)

# The main job: VictoriaMetrics on 127.0.0.1:8428 and an agent for this host.
# It builds what it runs, procfleet and VictoriaMetrics, not node_exporter
# (the tests' oracle), and says so first: with empty Go caches the first
# run downloads and compiles for about RUN_FIRST_TIME (measured in
# README.md), later ones take seconds.
RUN_FIRST_TIME := 7 minutes on 2 busy cores
.PHONY: run-say
run-say:
	@if [ -f $(BIN)/.victoria-metrics-$(VM_VERSION) ]; then \
	  echo "make run: building bin/procfleet (seconds once the Go build cache is warm)"; \
	else \
	  echo "make run: building bin/procfleet, then VictoriaMetrics $(VM_VERSION) into bin/ with go install;"; \
	  echo "  the first time, with empty Go caches, this downloads and compiles for about $(RUN_FIRST_TIME);"; \
	  echo "  go prints nothing while it compiles. Later runs reuse bin/ and take seconds."; \
	fi
run: run-say build $(BIN)/.victoria-metrics-$(VM_VERSION)
	$(BIN)/procfleet dev --victoria-metrics $(BIN)/victoria-metrics

# The second step is internal/promoracle, a nested test-only module that
# checks prom/relabel against Prometheus itself; `go test ./...` at the
# root skips it, so that the main module never depends on Prometheus.
test: build tools
	$(GO) test $(TEST_FLAGS) ./...
	cd internal/promoracle && $(GO) test $(TEST_FLAGS) ./...

# Micro-benchmarks, BENCH_COUNT runs each, summarised by benchstat.
bench: $(BIN)/.benchstat-$(BENCHSTAT_VERSION)
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) ./... | tee bench.txt
	$(BIN)/benchstat bench.txt

# Side by side on this machine: the agent against node_exporter scraped by
# vmagent, each into its own VictoriaMetrics (bench/e2e). JSON on stdout.
BENCH_E2E_FLAGS ?=
bench-e2e: build tools $(BIN)/.vmagent-$(VM_VERSION)
	$(GO) run ./bench/e2e -bin $(BIN) $(BENCH_E2E_FLAGS)

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
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o build/image/procfleet ./cmd/procfleet
	cp $(CA_BUNDLE) build/image/ca-certificates.crt
	docker build --pull=false -f deploy/Dockerfile -t $(IMAGE):$(VERSION) -t $(IMAGE):dev build/image

# The demo cluster of deploy/compose (three etcd, two VictoriaMetrics, a
# relay, three agents), from images built here: nothing is pulled.
COMPOSE ?= docker-compose
COMPOSE_FILE := deploy/compose/docker-compose.yml
.PHONY: compose-images up down
compose-images: image
	rm -rf build/compose
	mkdir -p build/compose/etcd build/compose/victoria-metrics
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o build/compose/etcd/etcd go.etcd.io/etcd/server/v3
	CGO_ENABLED=0 GOBIN=$(CURDIR)/build/compose/victoria-metrics $(GO) install -trimpath -ldflags "-s -w" github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@$(VM_VERSION)
	docker build --pull=false -f deploy/compose/Dockerfile.etcd -t procfleet-etcd:dev build/compose/etcd
	docker build --pull=false -f deploy/compose/Dockerfile.victoria-metrics -t procfleet-victoria-metrics:dev build/compose/victoria-metrics

up: compose-images
	$(COMPOSE) -f $(COMPOSE_FILE) -p procfleet up -d

down:
	$(COMPOSE) -f $(COMPOSE_FILE) -p procfleet down -v

# End-to-end tests against the demo cluster (e2e/, build tag e2e): starts it,
# breaks parts of it, and stops it again, also when a test fails.
.PHONY: e2e
e2e: up systemd-image
	status=0; $(GO) test -tags e2e -count=1 -v -timeout 20m ./e2e || status=$$?; \
	$(MAKE) down; exit $$status

# A Debian root with systemd as PID 1, imported as $(SYSTEMD_IMAGE), in
# which e2e/systemd_test.go runs `procfleet install` under a real systemd.
# debootstrap (Debian's package; run as root) builds it from
# $(DEBIAN_MIRROR), about 240 MB in a minute or two; the stamp, named after
# the suite and the packages, skips that while the image is still there.
SYSTEMD_IMAGE    ?= procfleet-systemd:dev
SYSTEMD_SUITE    ?= bookworm
SYSTEMD_PACKAGES := systemd,systemd-sysv,dbus
DEBIAN_MIRROR    ?= http://deb.debian.org/debian
comma            := ,
SYSTEMD_STAMP    := build/systemd/.image-$(SYSTEMD_SUITE)-$(subst $(comma),-,$(SYSTEMD_PACKAGES))
.PHONY: systemd-image
systemd-image:
	@if [ -f $(SYSTEMD_STAMP) ] && docker image inspect $(SYSTEMD_IMAGE) >/dev/null 2>&1; then \
	  echo "$(SYSTEMD_IMAGE): up to date ($(SYSTEMD_STAMP))"; exit 0; \
	fi; \
	set -ex; rm -rf build/systemd; mkdir -p build/systemd; \
	debootstrap --variant=minbase --include=$(SYSTEMD_PACKAGES) $(SYSTEMD_SUITE) build/systemd/rootfs $(DEBIAN_MIRROR); \
	tar -C build/systemd/rootfs -c . | docker import \
	  -c 'CMD ["/lib/systemd/systemd"]' - $(SYSTEMD_IMAGE); \
	rm -rf build/systemd/rootfs; touch $(SYSTEMD_STAMP)
